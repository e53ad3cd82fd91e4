"""A background thread that works through the schemas that are due, one at a time.

The prior fitter and the scorer refitter are both such a thread (one per API process): woken
after the request that made work (`wake`, run once its transaction committed) and every
`every_seconds` (work recorded by other processes). A request never waits for one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.runtime import Runtime

log = logging.getLogger(__name__)


BACKGROUND_NICENESS = 10


def lower_own_priority() -> None:
    """Run this thread at a lower CPU priority than the request threads: a refit or a prior fit
    can use a core for tens of seconds, and requests meanwhile should not queue behind it (Linux
    sets a priority per thread; elsewhere this does nothing). Work it hands to a library's own
    thread pool (torch, BLAS) keeps that pool's priority."""
    # Not Linux, or not allowed: run at the usual priority.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)


class SchemaWorker:
    """Subclasses say which schemas are due (`due`) and what to do for one (`work`)."""

    thread_name = "schema-worker"
    what = "work"
    """What the worker does, for its log lines ("prior fit", "scorer refit")."""
    join_seconds = 60.0
    """How long `stop` waits for a unit of work in flight."""

    def __init__(self, factory: sessionmaker[Session], runtime: Runtime,
                 every_seconds: float = 30.0) -> None:
        self.factory = factory
        self.runtime = runtime
        self.every_seconds = every_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self, session: Session) -> list[int]:
        raise NotImplementedError

    def work(self, schema_id: int) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_seconds)

    def run_once(self) -> int:
        """Work through every schema that is due; how many were done."""
        with session_scope(self.factory) as session:
            waiting = self.due(session)
        done = 0
        for schema_id in waiting:
            if self._stop.is_set():
                break
            try:
                self.work(schema_id)
                done += 1
            except Exception:  # one schema's failure must not stop the others'
                log.exception("%s of schema %s failed", self.what, schema_id)
        return done

    def _run(self) -> None:
        lower_own_priority()
        while not self._stop.is_set():
            self._wake.wait(self.every_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.run_once()
            except Exception:  # the database may be briefly away: try again at the next wake
                log.exception("%s pass failed", self.what)
