"""Stored schema priors: the calibrator fitted on a schema version's own examples, per judge.

Fitted once per (schema content, judge, top_k) in the background after a push
(app/labelling/prior_fitter.py) and read here by every process (API, job workers), so no request
asks the judge to fit one and a restart does not fit it again.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.calibration.models import SchemaPrior
from app.db import dialect_insert, utcnow
from app.rac.calibration import Calibrator
from app.rac.judge import Judge

NO_JUDGE = "none"


def judge_key(judge: Judge | None) -> str:
    """Which judge a prior was fitted with: its answers are part of the fit."""
    return NO_JUDGE if judge is None else f"{judge.model_id}|{judge.prompt_version}"


def stored(session: Session, schema_id: int, content_hash: str, judge: str,
           top_k: int) -> Calibrator | None:
    params = session.scalar(select(SchemaPrior.params).where(
        SchemaPrior.schema_id == schema_id, SchemaPrior.content_hash == content_hash,
        SchemaPrior.judge_key == judge, SchemaPrior.top_k == top_k))
    return Calibrator.from_json(params) if params is not None else None


def store(session: Session, schema_id: int, content_hash: str, judge: str, top_k: int,
          prior: Calibrator, fit_seconds: float) -> None:
    """Keep the first prior stored for this key (two processes may fit it at once)."""
    insert = dialect_insert(session)(SchemaPrior)
    session.execute(insert.on_conflict_do_nothing(
        index_elements=["schema_id", "content_hash", "judge_key", "top_k"]),
        [{"schema_id": schema_id, "content_hash": content_hash, "judge_key": judge,
          "top_k": top_k, "params": prior.to_json(), "fit_seconds": fit_seconds,
          "created_at": utcnow()}])
