"""The README's tour runs as written, as a newcomer runs it: from the package installed
(non-editable, a built wheel) into a folder outside the checkout, in a working directory that
holds only the tour's one input file (`schemas/demo.yaml`), against a real `rac serve` on the
embedded default (its data in `./var`, the default)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import httpx
import pytest

from tests.helpers import REPO, build_wheel, install_wheel, wait_for
from tests.rac.llama_server import free_port

pytestmark = pytest.mark.slow


def tour_commands() -> str:
    readme = (REPO / "README.md").read_text()
    start, end = readme.index("## A short tour"), readme.index("## Label schemas")
    blocks = re.findall(r"```sh\n(.*?)```", readme[start:end], flags=re.S)
    assert len(blocks) >= 9, "the tour lost its commands"
    return "\n".join(blocks)


def test_readme_tour_runs_as_written_from_an_installed_wheel(tmp_path):
    site = install_wheel(build_wheel(tmp_path / "dist"), tmp_path / "site")
    rac = site / "bin" / "rac"
    home = tmp_path / "newcomer"
    (home / "schemas").mkdir(parents=True)
    shutil.copy(REPO / "schemas" / "demo.yaml", home / "schemas" / "demo.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAC_")}
    env["PYTHONPATH"] = str(site)
    where = subprocess.run([sys.executable, "-c", "import app; print(app.__file__)"],
                           cwd=home, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(site)), where  # the wheel's code, not the checkout's
    version = subprocess.run([str(rac), "--version"], cwd=home, env=env, capture_output=True,
                             text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("rac "), version

    port = free_port()
    # as `make run` does: the server creates ./var/rac.db, the tour's commands then use it
    server = subprocess.Popen([str(rac), "serve", "--port", str(port)], cwd=home, env=env,
                              stdout=(tmp_path / "server.log").open("wb"),
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
        script = script.replace("/tmp/", f"{tmp_path}/")
        script = script.replace(".venv/bin/rac", str(rac))
        # Fail on any HTTP error, which `curl -s` alone would hide.
        script = re.sub(r"\bcurl -s", "curl -fsS", script)
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=home, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
        out = result.stdout
        assert '"label_count":5' in out  # the schema push
        assert '"status":"reviewed"' in out and '"label":"billing"' in out  # the review
        assert "event: end" in out  # the job's events ran to the end
        assert '"reviewed_model_decisions"' in out  # the stats
        # the client commands: a job watched to success, its labels as Parquet
        assert re.search(r"job job_\w+ succeeded: 2/2 items", result.stderr), result.stderr
        import pyarrow.parquet as pq

        table = pq.read_table(tmp_path / "tickets.parquet")
        assert table.column("id").to_pylist() == ["d1", "d2"]
        assert sorted(os.listdir(home)) == ["schemas", "var"]  # nothing written elsewhere
    finally:
        server.terminate()
        server.wait(timeout=30)
