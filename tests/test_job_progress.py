"""A running job shows progress that moves, and logs its start and end (both databases).

The job uses the bundled embedder with the retrieval strategy (no LLM) so that 300 items take
seconds; the commit interval is shortened to match, the mechanism is the one every job uses.
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from fastapi.testclient import TestClient

from app.jobs.service import SliceSizer
from app.logs import JsonFormatter
from app.main import create_app
from tests.helpers import SCHEMAS_DIR, bearer, job_annotation_counts, new_key

TEXTS = ["I was charged twice", "the app crashes on start", "please add a dark mode",
         "I forgot my password", "cancel my plan", "where is my refund"]


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def progress_client(settings):
    settings.jobs.progress_seconds = 0.1
    settings.log_format = "json"
    with TestClient(create_app(settings)) as c:
        yield c


def _seed(client: TestClient, session_factory, n: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    admin = bearer(new_key(session_factory, "acme", "admin"))
    client.post("/v1/schemas", content=(SCHEMAS_DIR / "demo.yaml").read_bytes(),
                headers={**admin, "Content-Type": "application/yaml"})
    items = [{"id": f"p-{i}", "text": f"{TEXTS[i % len(TEXTS)]} (ticket {i})"} for i in range(n)]
    assert client.post("/v1/items", json=items, headers=admin).status_code == 201
    return admin


def _watch(client: TestClient, headers: dict[str, str], job_id: str, timeout: float = 180
           ) -> list[dict]:
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if not seen or body["done"] != seen[-1]["done"] or body["state"] != seen[-1]["state"]:
            seen.append(body)
        if body["state"] in {"succeeded", "failed", "cancelled"}:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish; last seen {seen[-1]}")


def test_done_advances_while_a_300_item_job_runs(progress_client, session_factory):
    headers = _seed(progress_client, session_factory, 300)
    captured = Captured()
    logging.getLogger("app").addHandler(captured)
    try:
        r = progress_client.post("/v1/jobs", json={"schema": "support-demo", "items": {},
                                                   "strategy": "retrieval"}, headers=headers)
        assert r.status_code == 202, r.text
        job = r.json()
        seen = _watch(progress_client, headers, job["id"])
    finally:
        logging.getLogger("app").removeHandler(captured)
    assert seen[-1]["state"] == "succeeded" and seen[-1]["done"] == 300, seen[-1]
    running = [s for s in seen if s["state"] == "running" and 0 < s["done"] < 300]
    assert len(running) >= 5, [s["done"] for s in seen]  # the bar: 5 advances at least
    dones = [s["done"] for s in seen]
    assert dones == sorted(dones)
    assert all(s["items_per_second"] > 0 and s["eta_seconds"] > 0 for s in running)
    events = [line for line in captured.lines if line.get("job") == job["id"]]
    assert [e["event"] for e in events] == ["job.started", "job.finished"], events
    assert events[-1]["done"] == 300 and events[-1]["items_per_second"] > 0
    assert events[-1]["seconds"] > 0 and events[-1]["level"] == "info"


def test_cancel_stops_a_running_chunk_at_its_next_commit(progress_client, session_factory):
    headers = _seed(progress_client, session_factory, 300)
    captured = Captured()
    logging.getLogger("app").addHandler(captured)
    try:
        job = progress_client.post("/v1/jobs", json={"schema": "support-demo", "items": {},
                                                     "strategy": "retrieval"},
                                   headers=headers).json()
        deadline = time.monotonic() + 120
        while progress_client.get(f"/v1/jobs/{job['id']}", headers=headers).json()["done"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        cancelled = progress_client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers).json()
        assert cancelled["state"] == "cancelled"
        # The slice being labelled when the cancel came may still commit; then nothing moves.
        reads = [cancelled["done"]]
        while len(reads) < 3 or len(set(reads[-3:])) > 1:
            assert time.monotonic() < deadline, reads
            time.sleep(1.0)
            reads.append(progress_client.get(f"/v1/jobs/{job['id']}",
                                             headers=headers).json()["done"])
    finally:
        logging.getLogger("app").removeHandler(captured)
    assert reads[-1] < 300, reads  # a chunk that ignored the cancel would have run to the end
    assert job_annotation_counts(session_factory, job["id"])[1] == reads[-1]
    assert "job.cancelled" in [line["event"] for line in captured.lines
                               if line.get("job") == job["id"]]


def test_slice_size_follows_the_measured_speed() -> None:
    sizer = SliceSizer(seconds=2.0)
    assert sizer.size == 1
    sizer.record(1, 0.01)  # 100 items/s, but growth is capped at 4x a step
    assert sizer.size == 4
    for _ in range(5):
        sizer.record(sizer.size, sizer.size / 100)
    assert sizer.size == 200  # 2 s at 100 items/s
    sizer.record(200, 40.0)  # the backend slowed down to 5 items/s
    assert sizer.size == 10
    sizer.record(10, 30.0)  # slower than one commit interval per slice: one item at a time
    assert sizer.size == 1
