"""The in-process worker: a loop that claims chunks from the database and runs them.

It runs as a thread inside the API (the embedded default) or in the foreground of `rac worker`.
Any number of them, in any processes, can share one database: the chunk lease keeps them apart.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from app.jobs.service import reclaim_dead_incarnations, run_chunk
from app.process_identity import worker_name
from app.runtime import Runtime

log = logging.getLogger(__name__)


class JobRunner:
    def __init__(self, factory: sessionmaker[Session], runtime: Runtime,
                 idle_seconds: float = 1.0) -> None:
        self.factory = factory
        self.runtime = runtime
        self.idle_seconds = idle_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """A job was queued: look now instead of at the next poll."""
        self._wake.set()

    def run_forever(self) -> None:
        worker_id = self.runtime.settings.jobs.worker_id
        name = worker_name(worker_id)
        log.info("job worker %s started", name)
        try:
            reclaim_dead_incarnations(self.factory, worker_id)
        except Exception:  # the database may be away; the leases still run out in time
            log.exception("could not reclaim the chunks of a dead incarnation")
        while not self._stop.is_set():
            try:
                outcome = run_chunk(self.factory, self.runtime, name)
            except Exception:  # the database may be briefly away; keep the worker alive
                log.exception("job worker loop error")
                outcome = None
                self._stop.wait(self.idle_seconds)
            if outcome is None:
                self._wake.wait(self.idle_seconds)
                self._wake.clear()
        log.info("job worker %s stopped", name)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="rac-job-worker",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
