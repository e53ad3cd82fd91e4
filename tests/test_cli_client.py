"""The CLI as a client of a running server: a live uvicorn server (free port, both databases),
the `rac` commands pointed at it with RAC_URL and RAC_API_KEY, the bundled embedder labelling
for real. Upload, start, watch, export and list; and the errors a newcomer meets (a wrong key, no
server) as one line with exit status 2."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import update

from app.cli import main
from app.jobs.models import Job
from tests.helpers import SCHEMAS_DIR, bearer, live_server, new_key
from tests.rac.llama_server import free_port

pytestmark = pytest.mark.slow

TEXTS = ["I was charged twice", "the app crashes", "please add dark mode",
         "I forgot my password", "cancel my plan"]


@pytest.fixture
def server(settings, session_factory):  # type: ignore[no-untyped-def]
    from app.main import create_app

    settings.jobs.chunk_size = 16
    with live_server(create_app(settings)) as url:
        key = new_key(session_factory, "acme", "admin")
        r = httpx.post(f"{url}/v1/schemas", content=(SCHEMAS_DIR / "demo.yaml").read_bytes(),
                       headers={**bearer(key), "Content-Type": "application/yaml"})
        assert r.status_code == 201, r.text
        yield url, key


def rac(server, *args: str, key: str | None = None):  # type: ignore[no-untyped-def]
    url, default_key = server
    result = CliRunner().invoke(main, list(args), env={
        "RAC_URL": url, "RAC_API_KEY": default_key if key is None else key})
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_upload_start_watch_export_and_list(server, tmp_path):
    data = tmp_path / "tickets.csv"
    lines = ["id,text,channel"] + [f"t{i},{TEXTS[i % 5]} (case {i}),app" for i in range(60)]
    data.write_text("\n".join(lines) + "\n")

    # the `id` column is found without --id-column
    uploaded = rac(server, "datasets", "upload", str(data))
    assert uploaded.exit_code == 0, uploaded.output
    dataset = last_line(uploaded.stdout)
    assert dataset.startswith("ds_") and "60 items (60 new)" in uploaded.stderr

    started = rac(server, "jobs", "start", "--schema", "support-demo", "--dataset", dataset,
                  "--strategy", "retrieval")
    assert started.exit_code == 0, started.output
    job = last_line(started.stdout)
    assert job.startswith("job_") and "60 items" in started.stderr

    watched = rac(server, "jobs", "watch", job, "--interval", "0.2")
    assert watched.exit_code == 0, watched.output
    assert f"{job}:" in watched.stderr and "/60" in watched.stderr  # the progress bar
    assert "items/s" in watched.stderr and "ETA" in watched.stderr
    assert f"job {job} succeeded: 60/60 items" in watched.stderr

    out = tmp_path / "labels.parquet"
    exported = rac(server, "export", "--job", job, "--format", "parquet", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    assert f"decision: job {job}" in exported.stderr
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert table.num_rows == 60 and set(table.column("job").to_pylist()) == {job}
    assert table.column("id").to_pylist() == [f"t{i}" for i in range(60)]
    assert set(table.column("channel").to_pylist()) == {"app"}
    assert not (tmp_path / "labels.parquet.part").exists()

    csv_out = rac(server, "export", "--schema", "support-demo", "--format", "csv",
                  "--status", "accepted,needs_review,no_match")
    assert csv_out.exit_code == 0, csv_out.output
    assert csv_out.stdout.splitlines()[0].startswith("id,text,label,labels,")
    assert len(csv_out.stdout.strip().splitlines()) == 61

    listed = rac(server, "jobs", "list")
    assert job in listed.stdout and "succeeded" in listed.stdout and dataset in listed.stdout
    assert dataset in rac(server, "datasets", "list").stdout
    schemas = rac(server, "schemas", "list")
    assert schemas.exit_code == 0 and "support-demo" in schemas.stdout


def test_watch_exits_non_zero_when_the_job_failed(server, tmp_path, session_factory):
    data = tmp_path / "few.jsonl"
    data.write_text("".join(json.dumps({"id": f"f{i}", "text": TEXTS[i]}) + "\n"
                            for i in range(5)))
    dataset = last_line(rac(server, "datasets", "upload", str(data)).stdout)
    job = last_line(rac(server, "jobs", "start", "--schema", "support-demo", "--dataset",
                        dataset, "--strategy", "retrieval", "--watch", "--interval",
                        "0.2").stdout)
    # the ending is the server's to decide; here it is set as a failed job would leave it
    with session_factory() as session:
        session.execute(update(Job).where(Job.external_id == job)
                        .values(state="failed", error="the LLM server is down"))
        session.commit()
    watched = rac(server, "jobs", "watch", job, "--quiet")
    assert watched.exit_code == 1
    assert f"job {job} failed" in watched.stderr and "the LLM server is down" in watched.stderr
    ids = [r["id"] for r in map(json.loads, io.StringIO(rac(server, "export", "--job",
                                                             job).stdout))]
    assert ids == [f"f{i}" for i in range(5)]  # the `id` field of JSONL found too


def test_errors_are_one_line_with_exit_status_2(server):
    wrong = rac(server, "jobs", "list", key="rac_not_a_key")
    assert wrong.exit_code == 2
    assert "refused the API key (401)" in wrong.stderr
    missing = rac(server, "jobs", "watch", "job_nope")
    assert missing.exit_code == 2 and "404" in missing.stderr and "job_nope" in missing.stderr
    usage = rac(server, "export", "--format", "parquet")
    assert usage.exit_code == 2 and "--schema" in usage.stderr
    # a real process against a port where nothing listens: no traceback
    down = subprocess.run([sys.executable, "-m", "app.cli", "jobs", "list"], text=True,
                          capture_output=True, timeout=120,
                          env={**os.environ, "RAC_URL": f"http://127.0.0.1:{free_port()}",
                               "RAC_API_KEY": "rac_whatever",
                               "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert down.returncode == 2, down.stderr
    assert down.stderr.startswith("error: cannot reach the server at http://127.0.0.1:")
    assert "Traceback" not in down.stderr and len(down.stderr.strip().splitlines()) == 1


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("rac ")
