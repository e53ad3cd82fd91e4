"""The thread that fits schema priors in the background (one per API process).

A schema's prior (app/rac/prior.py) asks the judge about up to `JUDGE_QUESTIONS` of its
examples, about a minute with the bundled judge on 2 cores: too slow for a request. It is fitted
here after every push (`wake`, run once the push committed) and every `every_seconds` (pushes
and newly trained judges seen by other processes), stored (app/calibration/priors.py) and read
by every process. Until it is stored, classify uses the judge-free prior, which asks no judge
and costs about what building the label index does (app/labelling/service.py).
"""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.calibration import priors
from app.db import session_scope
from app.label_schemas import repository as schemas
from app.label_schemas.models import LabelSchema
from app.labelling import service
from app.rac.prior import fit_prior
from app.runtime import Runtime
from app.schema_worker import SchemaWorker

log = logging.getLogger(__name__)


def due(session: Session, runtime: Runtime) -> list[int]:
    """Schemas whose latest version has no stored prior for the judge the default strategy
    would use."""
    top_k = runtime.settings.engine.top_k
    out = []
    for schema in session.scalars(select(LabelSchema).where(LabelSchema.latest_version > 0)
                                  .order_by(LabelSchema.id)):
        version = schemas.get_version(session, schema)
        key = priors.judge_key(service.prior_judge(session, runtime, schema.id))
        if priors.stored(session, schema.id, version.content_hash, key, top_k) is None:
            out.append(schema.id)
    return out


def fit_and_store(factory: sessionmaker[Session], runtime: Runtime, schema_id: int) -> float:
    """Fit the prior of the schema's latest version and store it; seconds the fit took. The
    judge questions run outside any database transaction."""
    top_k = runtime.settings.engine.top_k
    with session_scope(factory) as session:
        schema = session.get(LabelSchema, schema_id)
        if schema is None:
            raise LookupError(f"schema {schema_id} is gone")
        version = schemas.get_version(session, schema)
        index = service.index_for(session, runtime, schema, version)
        judge = service.prior_judge(session, runtime, schema_id)
        content_hash = version.content_hash
    started = time.perf_counter()
    engine = runtime.settings.engine
    prior = fit_prior(index, top_k, judge, engine.target_precision or 0.95,
                      judge_questions=engine.prior_judge_questions)
    seconds = time.perf_counter() - started
    with session_scope(factory) as session:
        priors.store(session, schema_id, content_hash, priors.judge_key(judge), top_k, prior,
                     seconds)
    log.info("schema prior fitted", extra={"schema_id": schema_id, "seconds": round(seconds, 2),
                                          "judge_questions": prior.meta.get("judge_questions", 0)})
    return seconds


class PriorFitter(SchemaWorker):
    thread_name = "prior-fit"
    what = "prior fit"
    join_seconds = 120.0  # a fit asks the judge up to a minute of questions

    def due(self, session: Session) -> list[int]:
        return due(session, self.runtime)

    def work(self, schema_id: int) -> None:
        fit_and_store(self.factory, self.runtime, schema_id)

    def start(self) -> None:
        super().start()
        self._wake.set()  # schemas pushed while no process was running


def wake_prior_fitter(app: FastAPI) -> None:
    """Run after a push's response (its transaction committed): the fitter sees it at once."""
    fitter = getattr(app.state, "prior_fitter", None)
    if fitter is not None:
        fitter.wake()
