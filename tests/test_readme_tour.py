"""The README's tour runs as written against a real `rac serve` on the embedded default."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import pytest

from tests.helpers import REPO, wait_for
from tests.rac.llama_server import free_port

pytestmark = pytest.mark.slow


def tour_commands() -> str:
    readme = (REPO / "README.md").read_text()
    start, end = readme.index("## A short tour"), readme.index("## Label schemas")
    blocks = re.findall(r"```sh\n(.*?)```", readme[start:end], flags=re.S)
    assert len(blocks) >= 8, "the tour lost its commands"
    return "\n".join(blocks)


def test_readme_tour_runs_as_written(tmp_path):
    port = free_port()
    env = {**os.environ, "RAC_DATA_DIR": str(tmp_path / "var"),
           "RAC_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'rac.db'}"}
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                              cwd=REPO, env=env, stdout=(tmp_path / "server.log").open("wb"),
                              stderr=subprocess.STDOUT)
    try:
        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            except httpx.HTTPError:
                return server.poll() is not None  # stop waiting if it died
        wait_for(up, 120, what="the server to start")
        assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        script = tour_commands()
        script = script.replace("localhost:8000", f"127.0.0.1:{port}")
        script = script.replace("/tmp/tickets.csv", str(tmp_path / "tickets.csv"))
        script = script.replace(".venv/bin/rac", f"{sys.executable} -m app.cli")
        # Fail on any HTTP error, which `curl -s` alone would hide.
        script = re.sub(r"\bcurl -s", "curl -fsS", script)
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
        out = result.stdout
        assert '"label_count":5' in out  # the schema push
        assert '"status":"reviewed"' in out and '"label":"billing"' in out  # the review
        assert "event: end" in out  # the job's events ran to the end
        assert '"reviewed_model_decisions"' in out  # the stats
    finally:
        server.terminate()
        server.wait(timeout=30)
