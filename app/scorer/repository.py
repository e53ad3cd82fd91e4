"""Reading a schema's learnt scorers (parsed once per process: a fit of 77 labels is ~120 kB)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.rac.scorer import LearntScorer
from app.scorer.models import ScorerVersion

# By (row id, creation time): a database emptied and refilled (SQLite reuses ids) never serves
# another fit's weights.
_loaded: OrderedDict[tuple, LearntScorer] = OrderedDict()
_loaded_lock = threading.Lock()
_MAX_LOADED = 64


def latest(session: Session, schema_id: int) -> ScorerVersion | None:
    return session.scalar(select(ScorerVersion).where(ScorerVersion.schema_id == schema_id)
                          .order_by(ScorerVersion.version.desc()).limit(1))


def current(session: Session, schema_id: int) -> LearntScorer | None:
    """The schema's newest scorer (parsed once per process), or None before the first fit.
    The engine ignores it for a schema content it was not fitted for."""
    newest = session.execute(select(ScorerVersion.id, ScorerVersion.created_at)
                             .where(ScorerVersion.schema_id == schema_id)
                             .order_by(ScorerVersion.version.desc()).limit(1)).first()
    if newest is None:
        return None
    key = tuple(newest)
    with _loaded_lock:
        if key in _loaded:
            _loaded.move_to_end(key)
            return _loaded[key]
    row = session.get(ScorerVersion, newest.id)
    assert row is not None
    scorer = LearntScorer.from_bytes(row.params, version=row.version, blend=row.blend,
                                     n_reviews=row.n_reviews, fit_seconds=row.fit_seconds)
    with _loaded_lock:
        _loaded[key] = scorer
        while len(_loaded) > _MAX_LOADED:
            _loaded.popitem(last=False)
    return scorer


