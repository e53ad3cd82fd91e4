"""Queries of the items browser: one filter over a schema's items, keyset-paged, and the bulk
actions on the filtered set (each acts on exactly the rows it counted, or refuses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from app.auth.service import Principal
from app.datasets.models import DatasetItem
from app.db import utcnow
from app.errors import Conflict, InvalidInput
from app.items.models import Item
from app.labelling.models import Annotation, ItemState

PAGE_SIZE = 50
_BATCH = 500  # rows per INSERT ... VALUES in a bulk action


@dataclass(frozen=True)
class ItemFilter:
    schema_id: int
    q: str | None = None
    status: str | None = None
    label: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    dataset_id: int | None = None
    job_id: int | None = None
    reviewer: str | None = None


def _where(project_id: int, f: ItemFilter) -> list[Any]:
    current = aliased(Annotation)
    model = aliased(Annotation)
    conditions: list[Any] = [Item.project_id == project_id]
    if f.q:
        # lower() on both sides: the same case-insensitive match on SQLite and PostgreSQL.
        conditions.append(func.lower(Item.text).contains(f.q.lower(), autoescape=True))
    if f.status:
        conditions.append(ItemState.status == f.status)
    if f.label:
        conditions.append(ItemState.label == f.label)
    if f.min_confidence is not None:
        conditions.append(ItemState.confidence >= f.min_confidence)
    if f.max_confidence is not None:
        conditions.append(ItemState.confidence <= f.max_confidence)
    if f.dataset_id is not None:
        conditions.append(exists().where(DatasetItem.dataset_id == f.dataset_id,
                                         DatasetItem.item_id == Item.id))
    if f.job_id is not None:
        conditions.append(exists().where(model.id == ItemState.model_annotation_id,
                                         model.job_id == f.job_id))
    if f.reviewer:
        conditions.append(exists().where(current.id == ItemState.annotation_id,
                                         current.status == "reviewed",
                                         current.source == f.reviewer))
    return conditions


def _base(project_id: int, f: ItemFilter) -> Select:
    return (select(Item, ItemState)
            .join(ItemState, (ItemState.item_id == Item.id) & (ItemState.schema_id == f.schema_id))
            .where(*_where(project_id, f)))


def page(session: Session, project_id: int, f: ItemFilter, after: int | None,
         size: int = PAGE_SIZE) -> tuple[list[tuple[Item, ItemState]], int | None]:
    """One page in item order after `after` (an internal id), and the cursor of the next."""
    query = _base(project_id, f)
    if after is not None:
        query = query.where(Item.id > after)
    rows = [tuple(r) for r in session.execute(query.order_by(Item.id).limit(size + 1))]
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1][0].id if more and rows else None)  # type: ignore[return-value]


def count(session: Session, project_id: int, f: ItemFilter) -> int:
    return session.scalar(select(func.count()).select_from(_base(project_id, f).subquery())) or 0


# --- bulk actions -------------------------------------------------------------------------------

ACTIONS = ("accept", "send_to_review")


def _targets(project_id: int, f: ItemFilter, action: str,
             min_confidence: float | None) -> Select:
    """The rows an action changes: never a reviewed item (a person's label stays)."""
    query = _base(project_id, f).where(ItemState.status != "reviewed")
    if action == "accept":
        if min_confidence is None:
            raise InvalidInput("accepting proposals needs min_confidence")
        query = query.where(ItemState.status == "needs_review",
                            ItemState.model_label.is_not(None),
                            ItemState.model_confidence >= min_confidence)
    elif action == "send_to_review":
        query = query.where(ItemState.status == "accepted")
    else:
        raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    return query


def count_targets(session: Session, project_id: int, f: ItemFilter, action: str,
                  min_confidence: float | None) -> int:
    subquery = _targets(project_id, f, action, min_confidence).subquery()
    return session.scalar(select(func.count()).select_from(subquery)) or 0


def apply(session: Session, principal: Principal, f: ItemFilter, action: str,
          min_confidence: float | None, expected: int) -> int:
    """Run a bulk action on the filtered set, if it still has the `expected` number of rows
    (what the person confirmed); otherwise Conflict with the new count.

    Each changed item gets a new annotation (who did it, and why, in its note) copying the model's
    label and confidence; the status is `accepted` or `needs_review`, never `reviewed`: a bulk
    accept is not ground truth, so it feeds neither exemplars nor calibration.
    """
    rows = session.execute(_targets(principal.project_id, f, action, min_confidence)
                           .with_only_columns(ItemState.id, ItemState.item_id,
                                              ItemState.schema_version, ItemState.model_label,
                                              ItemState.model_confidence,
                                              ItemState.model_annotation_id)
                           .order_by(Item.id)).all()
    if len(rows) != expected:
        raise Conflict(f"the set changed: {len(rows)} items now match, not {expected}; "
                       "look again and confirm the new count")
    status = "accepted" if action == "accept" else "needs_review"
    note = (f"bulk accept: proposals at or above confidence {min_confidence:.2f}"
            if action == "accept" else "bulk: sent to review")
    labels = dict(session.execute(
        select(Annotation.id, Annotation.labels)
        .where(Annotation.id.in_([r.model_annotation_id for r in rows
                                  if r.model_annotation_id is not None]))).all()) if rows else {}
    now = utcnow()
    for start in range(0, len(rows), _BATCH):
        batch = rows[start:start + _BATCH]
        ids = session.scalars(
            insert(Annotation).returning(Annotation.id, sort_by_parameter_order=True),
            [{"project_id": principal.project_id, "item_id": r.item_id,
              "schema_id": f.schema_id, "schema_version": r.schema_version,
              "label": r.model_label,
              "labels": labels.get(r.model_annotation_id) or ([r.model_label]
                                                              if r.model_label else []),
              "confidence": r.model_confidence, "status": status,
              "source": principal.key_name, "reviewer_key_id": principal.key_id,
              "note": note, "trace": [], "created_at": now} for r in batch]).all()
        for r, annotation_id in zip(batch, ids, strict=True):
            session.execute(update(ItemState).where(ItemState.id == r.id).values(
                annotation_id=annotation_id, status=status, label=r.model_label,
                confidence=r.model_confidence, updated_at=now,
                lease_owner=None, lease_token=None, lease_expires_at=None))
    return len(rows)


def label_counts(session: Session, schema_id: int) -> dict[str | None, dict[str, int]]:
    """label -> {status: items} of the schema's current labels."""
    out: dict[str | None, dict[str, int]] = {}
    for label, status, n in session.execute(
            select(ItemState.label, ItemState.status, func.count())
            .where(ItemState.schema_id == schema_id)
            .group_by(ItemState.label, ItemState.status)):
        out.setdefault(label, {})[status] = n
    return out
