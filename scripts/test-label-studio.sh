#!/usr/bin/env bash
# The end-to-end test against a real Label Studio (tests/label_studio/). Installs Label Studio
# into .venv-label-studio first if needed (about 3 minutes), then starts it on a free port with
# SQLite and no network access, next to `rac serve`, and runs the test (about 5 minutes more,
# most of it Label Studio migrating its database on first start).
#   scripts/test-label-studio.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
bash scripts/label-studio-venv.sh
RAC_TEST_LABEL_STUDIO=1 "$PYTHON" -m pytest tests/label_studio -v -s "$@"
