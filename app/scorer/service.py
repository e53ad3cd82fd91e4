"""Fitting a schema's learnt scorer from its label index, and finding the one to rank with.

A fit reads the schema's current label index (profiles, examples and every reviewed item as an
exemplar) and runs outside any database transaction; only the new version is written, in a short
one. Refits are due when the schema's content changed or enough new exemplars arrived; they run on
the ScorerRefitter thread (app/scorer/worker.py), never inside a request.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.label_schemas import repository as schemas
from app.label_schemas.index import index_for
from app.rac.scorer import fit_scorer
from app.runtime import Runtime
from app.scorer import repository
from app.scorer.models import ScorerVersion

REFIT_SHARE = 0.1
"""Refit when the new exemplars reach this share of those of the last fit (at least one): a
refit costs seconds (bench/learnt_scorer.py), so a busy schema refits every ~10% more reviews."""


def due(session: Session) -> list[int]:
    """Schemas whose scorer is missing, stale for their content, or behind on exemplars."""
    out = []
    for row in repository.refit_candidates(session):
        if row.scorer_hash is None:  # never fitted
            out.append(row.schema_id)
        elif row.schema_hash is None:  # the schema is gone
            continue
        elif row.schema_hash != row.scorer_hash or \
                row.fresh >= max(1, int(REFIT_SHARE * row.n_reviews)):
            out.append(row.schema_id)
    return out


def refit(factory: sessionmaker[Session], runtime: Runtime, schema_id: int) -> ScorerVersion:
    """Fit and store a new version for the schema's current content."""
    with session_scope(factory) as session:
        schema = schemas.schema_by_id(session, schema_id)
        if schema is None:
            raise LookupError(f"schema {schema_id} is gone")
        version = schemas.get_version(session, schema)
        index = index_for(session, runtime, schema, version)
        content_hash = version.content_hash
        watermark = index.exemplar_watermark
        number = repository.latest_version_number(session, schema_id) + 1
    fitted = fit_scorer(index, version=number)  # seconds: no transaction is held meanwhile
    with session_scope(factory) as session:
        row = ScorerVersion(schema_id=schema_id, version=number, content_hash=content_hash,
                            params=fitted.to_bytes(), blend=fitted.blend,
                            n_reviews=fitted.n_reviews, exemplar_watermark=watermark,
                            fit_seconds=fitted.fit_seconds)
        session.add(row)
        session.flush()
        session.expunge(row)
    return row
