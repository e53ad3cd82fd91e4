"""Queries for decisions (annotations), items' current states and the exemplar log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case
from sqlalchemy.orm import Session

from app.db import dialect_insert
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
