"""The background schema worker: due schemas worked through one by one, one failure isolated,
and the thread runs below the request threads' CPU priority (both databases)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from app.schema_worker import BACKGROUND_NICENESS, SchemaWorker
from tests.helpers import wait_for


class RecordingWorker(SchemaWorker):
    def __init__(self, factory, runtime) -> None:  # type: ignore[no-untyped-def]
        super().__init__(factory, runtime, every_seconds=0.05)
        self.seen: list[tuple[int, int]] = []

    def due(self, session):  # type: ignore[no-untyped-def]
        return [1, 2, 3]

    def work(self, schema_id: int) -> None:
        if schema_id == 2:
            raise RuntimeError("schema 2 is broken")
        self.seen.append((schema_id, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority: Linux")
def test_work_runs_below_request_priority_and_one_failure_stops_no_other(session_factory):
    worker = RecordingWorker(session_factory, runtime=None)
    worker.start()
    try:
        wait_for(lambda: len(worker.seen) >= 2, 30, what="a pass of the worker")
    finally:
        worker.stop()
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert worker.seen[:2] == [(1, mine + BACKGROUND_NICENESS), (3, mine + BACKGROUND_NICENESS)]
    assert mine == os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # ours unchanged
