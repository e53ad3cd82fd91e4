"""Queries for decisions (annotations), items' current states and the exemplar log, and the
items browser's filter: one definition, so the browser's table, its bulk actions and the export
of the filtered set select exactly the same rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, exists, func
from sqlalchemy.orm import Session, aliased

from app.datasets.models import DatasetItem
from app.db import dialect_insert
from app.items.models import Item
from app.labelling.models import Annotation, ItemState


def insert_annotations(session: Session, rows: list[dict]) -> dict[Any, int]:
    """Insert annotation rows, skipping any whose (job_id, item_id) exists already; returns
    {item id: annotation id} of the rows written."""
    insert = dialect_insert(session)(Annotation)
    written = session.execute(
        insert.on_conflict_do_nothing(index_elements=["job_id", "item_id"])
        .returning(Annotation.id, Annotation.item_id), rows).all()
    return {item_id: annotation_id for annotation_id, item_id in written}


def upsert_states(session: Session, rows: list[dict], *, overwrite_reviewed: bool = False) -> None:
    """Insert or update item_states rows keyed by (item_id, schema_id) in one statement."""
    if not rows:
        return
    stmt = dialect_insert(session)(ItemState).values(rows)
    table = ItemState.__table__
    keep_reviewed = table.c.status == "reviewed"
    current = {}
    for column in ("annotation_id", "schema_version", "label", "confidence", "status"):
        new = stmt.excluded[column]
        current[column] = new if overwrite_reviewed else case((keep_reviewed, table.c[column]),
                                                             else_=new)
    model_columns = ("model_label", "model_confidence", "model_status", "model_annotation_id")
    updates = {
        **current,
        **{c: stmt.excluded[c] for c in model_columns if c in rows[0]},
        "updated_at": stmt.excluded.updated_at,
    }
    if overwrite_reviewed:  # a person decided: the item leaves any lease
        updates.update(lease_owner=None, lease_token=None, lease_expires_at=None)
    session.execute(stmt.on_conflict_do_update(index_elements=["item_id", "schema_id"],
                                               set_=updates))


@dataclass(frozen=True)
class ItemFilter:
    schema_id: int
    q: str | None = None
    """Text contains (case-insensitive)."""
    status: str | None = None
    label: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    dataset_id: int | None = None
    job_id: int | None = None
    """The job that made the item's last model decision."""
    reviewer: str | None = None
    """Key name of the person whose review is the item's current label."""


def item_conditions(project_id: int, f: ItemFilter) -> list[Any]:
    """WHERE conditions over `Item` joined with its `ItemState` under `f.schema_id` (the caller
    joins them; the conditions use their own aliases of `Annotation`, so a query that also joins
    the current annotation can add them)."""
    current = aliased(Annotation)
    model = aliased(Annotation)
    conditions: list[Any] = [Item.project_id == project_id, ItemState.schema_id == f.schema_id]
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
