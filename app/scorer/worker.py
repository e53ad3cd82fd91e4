"""The thread that refits learnt scorers in the background (one per API process).

It wakes after each review or every `every_seconds` (reviews recorded by other processes) and
refits the schemas that are due one at a time (app/schema_worker.py). A request never waits for
it: the engine keeps ranking with the newest stored version until the next one is written.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from app.runtime import Runtime
from app.schema_worker import SchemaWorker
from app.scorer import service


class ScorerRefitter(SchemaWorker):
    thread_name = "scorer-refit"
    what = "scorer refit"

    def __init__(self, factory: sessionmaker[Session], runtime: Runtime,
                 every_seconds: float = 30.0,
                 after_refit: Callable[[int], object] | None = None) -> None:
        super().__init__(factory, runtime, every_seconds)
        self.after_refit = after_refit
        """Run with the schema's id after each new version is stored (the calibrator learns from
        the new scorer's held-out heads: app/main.py wires its refit here)."""

    def due(self, session: Session) -> list[int]:
        return service.due(session)

    def work(self, schema_id: int) -> None:
        service.refit(self.factory, self.runtime, schema_id)
        if self.after_refit is not None:
            self.after_refit(schema_id)


def wake_refitter(app: FastAPI) -> None:
    """Run after a review's response (its transaction committed): the refitter sees it at once."""
    refitter = getattr(app.state, "scorer_refitter", None)
    if refitter is not None:
        refitter.wake()
