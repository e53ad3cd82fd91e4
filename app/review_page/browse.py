"""Queries of the items browser: one filter over a schema's items, keyset-paged, and the bulk
actions on the filtered set (each acts on exactly the rows it counted, or refuses)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.auth.service import Principal
from app.db import utcnow
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.items.models import Item
from app.labelling.models import Annotation, ItemState
from app.labelling.repository import ItemFilter, item_conditions

PAGE_SIZE = 50
_BATCH = 500  # rows per INSERT ... VALUES in a bulk action


def _base(project_id: int, f: ItemFilter) -> Select:
    return (select(Item, ItemState)
            .join(ItemState, (ItemState.item_id == Item.id) & (ItemState.schema_id == f.schema_id))
            .where(*item_conditions(project_id, f)))


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


@dataclass(frozen=True)
class Applied:
    count: int
    batch: str
    """Names the action's annotations (in their note), for `undo`."""


def _batch_mark(batch: str) -> str:
    return f" [batch {batch}]"


def apply(session: Session, principal: Principal, f: ItemFilter, action: str,
          min_confidence: float | None, expected: int) -> Applied:
    """Run a bulk action on the filtered set, if it still has the `expected` number of rows
    (what the person confirmed); otherwise Conflict with the new count.

    Each changed item gets a new annotation (who did it, and why, in its note) copying the model's
    label and confidence; the status is `accepted` or `needs_review`, never `reviewed`: a bulk
    accept is not ground truth, so it feeds neither exemplars nor calibration. The note ends
    with the action's batch id, which is how `undo` finds exactly these annotations again (a
    column would need a migration for what only the undo reads).
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
    batch_id = secrets.token_hex(6)
    note = (f"bulk accept: proposals at or above confidence {min_confidence:.2f}"
            if action == "accept" else "bulk: sent to review") + _batch_mark(batch_id)
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
    return Applied(len(rows), batch_id)


@dataclass(frozen=True)
class Undone:
    count: int
    """Items given back the decision they had before the action."""
    changed: int
    """Items left alone: decided again since (reviewed, relabelled, another bulk action)."""


def undo(session: Session, principal: Principal, batch: str) -> Undone:
    """Take back a bulk action: each item it changed that nobody has changed since gets its
    earlier annotation back as its current decision, and the action's annotations are deleted
    (as an undone review's is: a slip counts nowhere). Only the key that ran it, or an admin."""
    annotations = session.execute(
        select(Annotation.id, Annotation.item_id, Annotation.schema_id,
               Annotation.reviewer_key_id)
        .where(Annotation.project_id == principal.project_id,
               Annotation.note.endswith(_batch_mark(batch), autoescape=True))
        .order_by(Annotation.id)).all()
    if not annotations:
        raise NotFound(f"no bulk action {batch!r} to undo (already undone?)")
    if any(a.reviewer_key_id != principal.key_id for a in annotations) \
            and not principal.role.allows(Role.admin):
        raise Forbidden("only the key that ran a bulk action, or an admin, can undo it")
    now = utcnow()
    restored = changed = 0
    for a in annotations:
        state = session.scalar(select(ItemState).where(ItemState.item_id == a.item_id,
                                                       ItemState.schema_id == a.schema_id))
        if state is None or state.annotation_id != a.id:
            changed += 1
            continue
        previous = session.scalar(
            select(Annotation)
            .where(Annotation.item_id == a.item_id, Annotation.schema_id == a.schema_id,
                   Annotation.id < a.id)
            .order_by(Annotation.id.desc()).limit(1))
        if previous is None:  # cannot happen: the action copied an earlier model decision
            changed += 1
            continue
        state.annotation_id = previous.id
        state.schema_version = previous.schema_version
        state.label, state.confidence = previous.label, previous.confidence
        state.status = previous.status
        state.updated_at = now
        restored += 1
    session.flush()
    undone_ids = [a.id for a in annotations]
    for start in range(0, len(undone_ids), _BATCH):
        session.execute(delete(Annotation).where(
            Annotation.id.in_(undone_ids[start:start + _BATCH]),
            Annotation.id.not_in(select(ItemState.annotation_id)
                                 .where(ItemState.annotation_id.in_(
                                     undone_ids[start:start + _BATCH])))))
    return Undone(restored, changed)


def label_counts(session: Session, schema_id: int) -> dict[str | None, dict[str, int]]:
    """label -> {status: items} of the schema's current labels."""
    out: dict[str | None, dict[str, int]] = {}
    for label, status, n in session.execute(
            select(ItemState.label, ItemState.status, func.count())
            .where(ItemState.schema_id == schema_id)
            .group_by(ItemState.label, ItemState.status)):
        out.setdefault(label, {})[status] = n
    return out
