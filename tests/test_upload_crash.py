"""A server killed in the middle of a dataset upload (a real `rac serve` process, SIGKILL): the
dataset is listed as failed with the rows it really holds, no job can start on it, and posting
the file again completes it without a duplicate. Both databases."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.datasets.models import Dataset, DatasetItem
from app.items.models import Item
from tests.helpers import bearer, demo_schema, new_key, wait_for

pytestmark = pytest.mark.slow

ROWS = 60_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(db_url: str, data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RAC_DATABASE_URL": db_url, "RAC_DATA_DIR": str(data_dir),
           "RAC_DB_AUTO_UPGRADE": "true", "RAC_JOBS__INPROCESS_WORKER": "false"}
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1",
                                "--port", str(port)], env=env, stdout=log.open("ab"),
                               stderr=subprocess.STDOUT)

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    # ~10 s on an idle machine; minutes at load 25 on 2 cores.
    try:
        wait_for(up, 600, interval=0.5, what="the server to start")
    except AssertionError:
        process.kill()
        raise
    return process


def _dataset_progress(factory) -> tuple[int, int] | None:  # type: ignore[no-untyped-def]
    """(stored members, committed rows) of the upload under way, once a batch is in."""
    with factory() as session:
        dataset = session.scalars(select(Dataset)).first()
        if dataset is None:
            return None
        members = session.scalar(select(func.count()).select_from(DatasetItem)
                                 .where(DatasetItem.dataset_id == dataset.id)) or 0
        return (members, dataset.rows) if members else None


def test_a_server_killed_mid_upload_leaves_a_failed_dataset_that_counts_its_rows(
        db, session_factory, tmp_path):
    content = ("id,text,group\n" + "".join(f"r{i},message number {i},{i % 7}\n"
                                           for i in range(ROWS))).encode()
    key = new_key(session_factory, "acme", "admin")
    log = tmp_path / "server.log"
    port = _free_port()
    server = _serve(db.url, tmp_path / "data", port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        def post_file() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server dies under it
                httpx.post(f"{base}/v1/datasets", headers=bearer(key), timeout=300,
                           files={"file": ("big.csv", content)},
                           data={"text_column": "text", "id_column": "id"})

        uploader = threading.Thread(target=post_file, daemon=True)
        uploader.start()
        members, _ = wait_for(lambda: _dataset_progress(session_factory), 600, interval=0.05,
                              what="the first committed batch")
        server.kill()
        server.wait(timeout=30)
        uploader.join(timeout=60)
        with session_factory() as session:
            stored = session.scalar(select(func.count()).select_from(DatasetItem))
        assert 0 < stored < ROWS, "the kill should land in the middle of the file"

        server = _serve(db.url, tmp_path / "data", port, log)
        with httpx.Client(base_url=base, headers=bearer(key), timeout=600) as client:
            listed = client.get("/v1/datasets").json()["items"]
            assert len(listed) == 1
            failed = listed[0]
            assert failed["status"] == "failed", failed
            assert failed["items"] == stored and failed["rows"] == stored  # no bad rows here
            assert "upload the file again" in failed["error"]
            assert client.get(f"/v1/datasets/{failed['id']}").json()["status"] == "failed"
            assert client.post("/v1/schemas", json=demo_schema()).status_code == 201
            job = client.post("/v1/jobs", json={"schema": "support", "dataset": failed["id"]})
            assert job.status_code == 409 and "failed" in job.json()["detail"], job.text

            again = client.post("/v1/datasets", files={"file": ("big.csv", content)},
                                data={"text_column": "text", "id_column": "id"})
            assert again.status_code == 201, again.text
            body = again.json()
            assert (body["status"], body["rows"], body["items"]) == ("complete", ROWS, ROWS)
            assert body["created"] == ROWS - stored
        with session_factory() as session:
            assert session.scalar(select(func.count()).select_from(Item)) == ROWS
    finally:
        server.kill()
        server.wait(timeout=30)
