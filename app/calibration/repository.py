"""Queries for calibrators and the reviewed decisions they are fitted from; one schema each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.calibration.models import CalibratorVersion
from app.label_schemas.models import LabelSchema
from app.labelling.models import Annotation, ItemState


def latest(session: Session, schema_id: int) -> CalibratorVersion | None:
    """The schema's newest calibrator version: the one that scores new decisions."""
    return session.scalar(select(CalibratorVersion).where(CalibratorVersion.schema_id == schema_id)
                          .order_by(CalibratorVersion.version.desc()).limit(1))


def latest_version_number(session: Session, schema_id: int) -> int:
    return session.scalar(select(func.max(CalibratorVersion.version))
                          .where(CalibratorVersion.schema_id == schema_id)) or 0


def reviews_in_latest(session: Session, schema_id: int) -> int:
    """Reviews the newest calibrator was fitted on (0 if none was)."""
    return session.scalar(select(CalibratorVersion.n_reviews)
                          .where(CalibratorVersion.schema_id == schema_id)
                          .order_by(CalibratorVersion.version.desc()).limit(1)) or 0


def reviewed_decision_rows(session: Session, schema_id: int) -> Sequence[Any]:
    """(item id, trace, model label, reviewed label) of each reviewed model decision that
    proposed a label, in item-state order."""
    return session.execute(
        select(ItemState.item_id, Annotation.trace, ItemState.model_label, ItemState.label)
        .join(Annotation, Annotation.id == ItemState.model_annotation_id)
        .where(ItemState.schema_id == schema_id, ItemState.status == "reviewed",
               ItemState.model_label.is_not(None))
        .order_by(ItemState.id)).all()


def count_reviewed_decisions(session: Session, schema_id: int) -> int:
    """Reviewed items with a model decision that proposed a label: what a refit can use."""
    return session.scalar(select(func.count()).select_from(ItemState).where(
        ItemState.schema_id == schema_id, ItemState.status == "reviewed",
        ItemState.model_label.is_not(None), ItemState.model_annotation_id.is_not(None))) or 0


def lock_schema(session: Session, schema_id: int) -> None:
    """Lock the schema row until the transaction ends (FOR NO KEY UPDATE on PostgreSQL: it does
    not wait for the key-share locks that the reviews' own inserts hold on it)."""
    session.execute(select(LabelSchema.id).where(LabelSchema.id == schema_id)
                    .with_for_update(key_share=True))


def sample_model_decisions(session: Session, schema_id: int,
                           limit: int) -> Sequence[Any]:
    """(trace, model label) of up to `limit` of the schema's model decisions, a random sample."""
    # The ids are sampled first, so only they are sorted: with the traces joined before the
    # sort, each sample read every decision's trace (200,000 synthetic decisions: 0.8-1.0 s
    # against 0.08-0.13 s on PostgreSQL, 0.33 against 0.06 s on SQLite), and single decisions
    # take such a sample every minute (app/labelling/service.py).
    sampled = (select(ItemState.id)
               .where(ItemState.schema_id == schema_id,
                      ItemState.model_annotation_id.is_not(None))
               .order_by(func.random()).limit(limit))
    return session.execute(
        select(Annotation.trace, ItemState.model_label)
        .join(Annotation, Annotation.id == ItemState.model_annotation_id)
        .where(ItemState.id.in_(sampled))).all()
