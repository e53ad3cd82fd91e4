"""Reading a schema's learnt scorers (parsed once per process: a fit of 77 labels is ~120 kB)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from app.items.models import Item
from app.label_schemas.models import LabelSchema, SchemaVersion
from app.labelling.models import Exemplar
from app.rac.scorer import LearntScorer
from app.scorer.models import ItemVector, ScorerVersion

# By (row id, creation time): a database emptied and refilled (SQLite reuses ids) never serves
# another fit's weights.
_loaded: OrderedDict[tuple, LearntScorer] = OrderedDict()
_loaded_lock = threading.Lock()
_MAX_LOADED = 64


def latest(session: Session, schema_id: int) -> ScorerVersion | None:
    return session.scalar(select(ScorerVersion).where(ScorerVersion.schema_id == schema_id)
                          .order_by(ScorerVersion.version.desc()).limit(1))


def latest_version_number(session: Session, schema_id: int) -> int:
    return session.scalar(select(func.max(ScorerVersion.version))
                          .where(ScorerVersion.schema_id == schema_id)) or 0


def refit_candidates(session: Session) -> Sequence[Row[Any]]:
    """One row per schema with exemplars, in one query (the refit thread asks every 30 s, and
    asked once per schema before): `schema_id`, `schema_hash` (the content hash of its latest
    version; null if the schema is gone), `scorer_hash` and `n_reviews` of its newest scorer
    (null before the first fit), and `fresh`, the exemplars stored after that scorer's fit."""
    with_exemplars = select(Exemplar.schema_id).distinct().subquery()
    newest = (select(ScorerVersion.schema_id, func.max(ScorerVersion.version).label("version"))
              .group_by(ScorerVersion.schema_id).subquery())
    fresh = (select(func.count()).select_from(Exemplar)
             .where(Exemplar.schema_id == ScorerVersion.schema_id,
                    Exemplar.id > ScorerVersion.exemplar_watermark)
             .correlate(ScorerVersion).scalar_subquery())
    return session.execute(
        select(with_exemplars.c.schema_id, SchemaVersion.content_hash.label("schema_hash"),
               ScorerVersion.content_hash.label("scorer_hash"), ScorerVersion.n_reviews,
               fresh.label("fresh"))
        .select_from(with_exemplars)
        .outerjoin(LabelSchema, LabelSchema.id == with_exemplars.c.schema_id)
        .outerjoin(SchemaVersion, (SchemaVersion.schema_id == LabelSchema.id)
                   & (SchemaVersion.version == LabelSchema.latest_version))
        .outerjoin(newest, newest.c.schema_id == with_exemplars.c.schema_id)
        .outerjoin(ScorerVersion, (ScorerVersion.schema_id == newest.c.schema_id)
                   & (ScorerVersion.version == newest.c.version))
        .order_by(with_exemplars.c.schema_id)).all()


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


def with_held_out_heads(session: Session, schema_id: int, scorer: LearntScorer
                        ) -> LearntScorer:
    """`scorer` (the schema's newest, from `current`) with its stored held-out heads; as it is
    when they are not stored (yet). Read fresh each time: only calibrator refits need them."""
    data = session.scalar(select(ScorerVersion.held_out_params).where(
        ScorerVersion.schema_id == schema_id, ScorerVersion.version == scorer.version))
    return scorer.with_held_out_from_bytes(data) if data is not None else scorer


def store_held_out_heads(session: Session, schema_id: int, scorer: LearntScorer) -> None:
    row = session.scalar(select(ScorerVersion).where(ScorerVersion.schema_id == schema_id,
                                                     ScorerVersion.version == scorer.version))
    if row is not None:  # else the schema went meanwhile
        row.held_out_params = scorer.held_out_to_bytes()


def unreviewed_items(session: Session, schema_id: int, project_id: int, embedder_id: str,
                     limit: int) -> Sequence[Any]:
    """Up to `limit` of the project's items that no one reviewed for the schema, spread evenly
    over all of them: `id`, `text` and `vector` (the stored embedding by `embedder_id`; null
    when not embedded yet)."""
    # NOT IN an uncorrelated subquery: both databases evaluate it once (a correlated NOT EXISTS
    # took 54 s on SQLite for 8,003 items and 1,540 reviews, bench/scorer_refit.py)
    reviewed = select(Exemplar.item_id).where(Exemplar.schema_id == schema_id)
    return session.execute(
        select(Item.id, Item.text, ItemVector.vector)
        .outerjoin(ItemVector, (ItemVector.item_id == Item.id)
                   & (ItemVector.embedder_id == embedder_id))
        .where(Item.project_id == project_id, Item.id.not_in(reviewed))
        .order_by(_spread(Item.id), Item.id).limit(limit)).all()


def _spread(item_id: Any) -> Any:
    """An order that takes items from the whole id range (Fibonacci hashing of the id, mod
    2^31), the same at every refit so kept vectors are reused. The newest items instead: an
    upload sorted by label and larger than the pool taught the propagation a few labels only
    (Banking77 dev, 20 per label: 0.8805 against 0.8835 without any unreviewed item). Products
    stay below 2^62: no overflow in PostgreSQL's bigint or SQLite's integers."""
    modulus = 2 ** 31
    return ((item_id % modulus) * 1_640_531_527) % modulus


def store_item_vectors(session: Session, embedder_id: str, item_ids: Sequence[int],
                       vectors: Sequence[bytes]) -> None:
    """Keep items' embeddings; an item stored meanwhile (another process) is left as it is."""
    known = set(session.scalars(select(ItemVector.item_id).where(
        ItemVector.embedder_id == embedder_id, ItemVector.item_id.in_(list(item_ids)))))
    session.add_all(ItemVector(item_id=i, embedder_id=embedder_id, vector=v)
                    for i, v in zip(item_ids, vectors, strict=True) if i not in known)
