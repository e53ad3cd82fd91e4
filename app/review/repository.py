"""Queries for the review queue: leases, an item's state and annotations, and the rows review
stats are computed from. Always scoped to one schema (a schema belongs to one project)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from app.items.models import Item
from app.label_schemas.models import LabelSchema
from app.labelling.models import NEEDS_A_PERSON, Annotation, Exemplar, ItemState


def lease(session: Session, key_id: int, schema: LabelSchema, limit: int, *, token: str,
          now: datetime, lease_seconds: int,
          exclude: Collection[str] = ()) -> list[tuple[Item, ItemState, Annotation]]:
    """Lease up to `limit` items that need a person to key `key_id`, least confident first, and
    return them with their state and current annotation.

    One UPDATE claims them; on PostgreSQL its subquery takes the rows FOR UPDATE SKIP LOCKED, and
    SQLite runs one writer at a time, so two reviewers never hold the same item. The key's own
    unexpired leases come first (a reload shows the same items). `exclude` (item ids) leaves
    items out.
    """
    conditions = [ItemState.schema_id == schema.id, ItemState.status.in_(NEEDS_A_PERSON),
                  or_(ItemState.lease_expires_at.is_(None), ItemState.lease_expires_at < now,
                      ItemState.lease_owner == key_id)]
    if exclude:
        conditions.append(ItemState.item_id.not_in(
            select(Item.id).where(Item.project_id == schema.project_id,
                                  Item.external_id.in_(list(exclude)))))
    claimable = (
        select(ItemState.id)
        .where(*conditions)
        # CASE, not `(lease_owner = me) DESC`: that is NULL for unleased rows, and PostgreSQL
        # sorts NULLs first when descending, which put other items before the caller's own.
        .order_by(case((ItemState.lease_owner == key_id, 0), else_=1),
                  ItemState.confidence.asc(), ItemState.id.asc())
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    session.execute(
        update(ItemState)
        .where(ItemState.id.in_(claimable.scalar_subquery()))
        .values(lease_owner=key_id, lease_token=token,
                lease_expires_at=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(
        select(Item, ItemState, Annotation)
        .join(ItemState, ItemState.item_id == Item.id)
        .join(Annotation, Annotation.id == ItemState.annotation_id)
        .where(ItemState.lease_token == token)
        .order_by(ItemState.confidence.asc(), ItemState.id.asc())
    ).all()
    return [(item, state, annotation) for item, state, annotation in rows]


def release_lease(session: Session, key_id: int, item_id: int, schema_id: int) -> bool:
    """Clear key `key_id`'s lease on the item; True if it held one."""
    result = cast(CursorResult[Any], session.execute(
        update(ItemState)
        .where(ItemState.item_id == item_id, ItemState.schema_id == schema_id,
               ItemState.lease_owner == key_id)
        .values(lease_owner=None, lease_token=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    ))
    return bool(result.rowcount)


def status_counts(session: Session, schema_id: int) -> dict[str, int]:
    """{status: items of the schema with it}."""
    return dict(session.execute(  # type: ignore[arg-type]
        select(ItemState.status, func.count()).where(ItemState.schema_id == schema_id)
        .group_by(ItemState.status)).all())


def schema_names_of_item(session: Session, item_id: int) -> list[str]:
    """The schemas the item has a label under."""
    return list(session.scalars(
        select(LabelSchema.name).join(ItemState, ItemState.schema_id == LabelSchema.id)
        .where(ItemState.item_id == item_id)))


def state_of(session: Session, item_id: int, schema_id: int) -> ItemState | None:
    return session.scalar(select(ItemState).where(ItemState.item_id == item_id,
                                                  ItemState.schema_id == schema_id))


def get_annotation(session: Session, annotation_id: int) -> Annotation | None:
    return session.get(Annotation, annotation_id)


def annotation_before(session: Session, item_id: int, schema_id: int,
                      annotation_id: int) -> Annotation | None:
    """The item's annotation under the schema just before `annotation_id`."""
    return session.scalar(
        select(Annotation)
        .where(Annotation.item_id == item_id, Annotation.schema_id == schema_id,
               Annotation.id < annotation_id)
        .order_by(Annotation.id.desc()).limit(1))


def delete_annotation(session: Session, annotation_id: int) -> None:
    session.execute(delete(Annotation).where(Annotation.id == annotation_id))


def last_exemplar(session: Session, schema_id: int, item_id: int) -> Exemplar | None:
    """The item's latest row in the schema's append-only exemplar log."""
    return session.scalar(select(Exemplar).where(Exemplar.schema_id == schema_id,
                                                 Exemplar.item_id == item_id)
                          .order_by(Exemplar.id.desc()).limit(1))


def auto_accepted_count(session: Session, schema_id: int, cutoff: float) -> int:
    """Items the model labelled at or above `cutoff` (whatever a person did later)."""
    return session.scalar(select(func.count()).where(
        ItemState.schema_id == schema_id, ItemState.model_status.is_not(None),
        ItemState.model_label.is_not(None), ItemState.model_confidence >= cutoff)) or 0


def reviewed_model_decisions(session: Session, schema_id: int,
                             ) -> list[tuple[str | None, str | None, float | None]]:
    """(model label, reviewed label, model confidence) of every item the model decided and a
    person then reviewed."""
    return [tuple(row) for row in session.execute(  # type: ignore[misc]
        select(ItemState.model_label, ItemState.label, ItemState.model_confidence)
        .where(ItemState.schema_id == schema_id, ItemState.status == "reviewed",
               ItemState.model_status.is_not(None))).all()]


def reviewed_model_labels(session: Session, schema_id: int) -> list[tuple[float, bool]]:
    """(model confidence, model label == reviewed label) for items the model labelled and a
    person then reviewed: the ground truth a precision–coverage curve is drawn from."""
    rows = session.execute(
        select(ItemState.model_confidence, ItemState.model_label, ItemState.label)
        .where(ItemState.schema_id == schema_id, ItemState.status == "reviewed",
               ItemState.model_label.is_not(None), ItemState.model_confidence.is_not(None))
    ).all()
    return [(confidence, model == person) for confidence, model, person in rows
            if confidence is not None]  # filtered by the query too; this tells the type
