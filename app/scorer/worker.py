"""The thread that refits learnt scorers in the background (one per API process).

It wakes after each review (`wake`) or every `every_seconds` (reviews recorded by other
processes), asks which schemas are due and refits them one at a time. A request never waits for
it: the engine keeps ranking with the newest stored version until the next one is written.
"""

from __future__ import annotations

import logging
import threading

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.runtime import Runtime
from app.scorer import service

log = logging.getLogger(__name__)


class ScorerRefitter:
    def __init__(self, factory: sessionmaker[Session], runtime: Runtime,
                 every_seconds: float = 30.0) -> None:
        self.factory = factory
        self.runtime = runtime
        self.every_seconds = every_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refits = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scorer-refit", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def run_once(self) -> int:
        """Refit every schema that is due; how many were refitted."""
        with session_scope(self.factory) as session:
            due = service.due(session)
        done = 0
        for schema_id in due:
            if self._stop.is_set():
                break
            try:
                service.refit(self.factory, self.runtime, schema_id)
                done += 1
            except Exception:  # one schema's failure must not stop the others' refits
                log.exception("scorer refit of schema %s failed", schema_id)
        self.refits += done
        return done

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.every_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.run_once()
            except Exception:
                log.exception("scorer refit pass failed")


def wake_refitter(app: FastAPI) -> None:
    """Run after a review's response (its transaction committed): the refitter sees it at once."""
    refitter = getattr(app.state, "scorer_refitter", None)
    if refitter is not None:
        refitter.wake()
