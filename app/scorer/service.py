"""Fitting a schema's learnt scorer from its label index, and finding the one to rank with.

A fit reads the schema's current label index (profiles, examples and every reviewed item as an
exemplar) and the vectors of the project's unreviewed items (their labels are propagated from the
reviewed ones), and runs outside any database transaction; only the new version is written, in a
short one. Unreviewed items are embedded once, a time-boxed share per refit, and kept. Refits are
due when the schema's content changed or enough new exemplars arrived; they run on the
ScorerRefitter thread (app/scorer/worker.py), never inside a request.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.label_schemas import repository as schemas
from app.label_schemas.index import index_for
from app.rac.calibration import MIN_REVIEWS
from app.rac.embedder import Embedder
from app.rac.scorer import fit_scorer, with_held_out_heads
from app.runtime import Runtime
from app.scorer import repository
from app.scorer.models import ScorerVersion

REFIT_SHARE = 0.1
"""Refit when the new exemplars reach this share of those of the last fit (at least one): a
refit costs seconds (bench/learnt_scorer.py), so a busy schema refits every ~10% more reviews."""
POOL_LIMIT = 8000
"""Unreviewed items a fit propagates labels to (an even spread over the project's items,
app/scorer/repository.py): the Banking77 bench's pool was
6,500-8,000 items; the graph and the fit grow with it (~20 s for 1,540 reviews + 6,500 items)."""
EMBED_SECONDS = 15.0
"""Time a refit may spend embedding unreviewed items not embedded yet (32 at a time); the rest
wait for the next refits, so a refit stays within its budget (<= 60 s for 1,540 reviews) while
a fresh upload of thousands of items joins the pool over a few refits."""
_EMBED_BATCH = 32  # a short pass at a time: the refit shares the cores with requests


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
        pool = repository.unreviewed_items(session, schema_id, schema.project_id,
                                           runtime.embedder.model_id, POOL_LIMIT)
    embedder = runtime.background_embedder
    unlabelled = unlabelled_vectors(factory, embedder, pool)
    # seconds: no transaction is held meanwhile
    fitted = fit_scorer(index, version=number, unlabelled=unlabelled)
    with session_scope(factory) as session:
        row = ScorerVersion(schema_id=schema_id, version=number, content_hash=content_hash,
                            params=fitted.to_bytes(), blend=fitted.blend,
                            n_reviews=fitted.n_reviews, exemplar_watermark=watermark,
                            fit_seconds=fitted.fit_seconds)
        session.add(row)
        session.flush()
        session.expunge(row)
    # Stored, it ranks new items from now on. Then the heads the calibrator learns from: each
    # fitted without a fold of the reviews (app/rac/review_probes.py), five more fits that no
    # request waits for; none before there are reviews enough for a calibrator to use them.
    if fitted.n_reviews >= MIN_REVIEWS:
        crossed = with_held_out_heads(fitted, index, unlabelled=unlabelled)
        with session_scope(factory) as session:
            repository.store_held_out_heads(session, schema_id, crossed)
    return row


def unlabelled_vectors(factory: sessionmaker[Session], embedder: Embedder,
                       pool: Sequence[Any]) -> np.ndarray:
    """The pool's vectors: the stored ones, and those of items embedded now within
    EMBED_SECONDS (stored for the next refits)."""
    known = [np.frombuffer(row.vector, dtype=np.float32) for row in pool
             if row.vector is not None]
    missing = [row for row in pool if row.vector is None]
    started = time.perf_counter()
    for start in range(0, len(missing), _EMBED_BATCH):
        if time.perf_counter() - started >= EMBED_SECONDS:
            break
        batch = missing[start:start + _EMBED_BATCH]
        vectors = np.asarray(embedder.embed([row.text for row in batch]), dtype=np.float32)
        with session_scope(factory) as session:
            repository.store_item_vectors(session, embedder.model_id, [row.id for row in batch],
                                          [v.tobytes() for v in vectors])
        known.extend(vectors)
    return np.stack(known) if known else np.zeros((0, embedder.dim), dtype=np.float32)
