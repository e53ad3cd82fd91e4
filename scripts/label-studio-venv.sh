#!/usr/bin/env bash
# Create .venv-label-studio (a virtualenv of its own: Label Studio pins Django, pydantic and many
# others that conflict with the service's packages) and install Label Studio from PyPI into it.
# Prints how long the install took. Re-running is a no-op once the stamp exists.
#   scripts/label-studio-venv.sh            # LABEL_STUDIO_VERSION=1.23.2 by default
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${LABEL_STUDIO_VENV:-.venv-label-studio}"
VERSION="${LABEL_STUDIO_VERSION:-1.23.2}"
STAMP="$VENV/.installed-$VERSION"
if [ -f "$STAMP" ]; then
    echo "label-studio $VERSION already installed in $VENV"
    exit 0
fi
start=$(date +%s)
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --progress-bar off "label-studio==$VERSION"
touch "$STAMP"
echo "label-studio $VERSION installed in $VENV in $(( $(date +%s) - start )) s"
