"""Handing queued chunks to whichever workers the settings name."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.jobs import repository

log = logging.getLogger(__name__)


class Dispatcher:
    """In-process: wake the worker thread. Celery: one task per chunk."""

    def __init__(self, settings: Settings, wake=None) -> None:  # type: ignore[no-untyped-def]
        self.settings = settings
        self._wake = wake

    def chunks_queued(self, chunk_ids: list[int]) -> None:
        if self.settings.queue == "celery":
            from app.jobs.celery_app import enqueue_chunks

            enqueue_chunks(chunk_ids)
        elif self._wake is not None:
            self._wake()


class OrphanSweeper:
    """With Celery: a chunk whose worker died holds an expired lease until the broker redelivers
    its message (the visibility timeout, an hour). Re-queue such chunks as soon as their lease
    ends instead; a task that arrives for a chunk already done does nothing."""

    def __init__(self, factory: sessionmaker[Session], dispatcher: Dispatcher,
                 every_seconds: float) -> None:
        self.factory = factory
        self.dispatcher = dispatcher
        self.every_seconds = every_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rac-orphan-sweeper",
                                        daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_seconds):
            try:
                with self.factory() as session:
                    orphans = repository.orphaned_chunk_ids(session)
                if orphans:
                    log.info("re-queueing %d chunks whose worker went silent", len(orphans))
                    self.dispatcher.chunks_queued(orphans)
            except Exception as exc:  # keep sweeping; the broker or database may be back soon
                log.warning("orphan sweep failed: %s", exc)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
