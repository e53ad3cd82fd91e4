"""The export query: an item's current label under one schema, one keyset page at a time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets.models import DatasetItem
from app.items.models import Item
from app.labelling.models import Annotation, ItemState


@dataclass(frozen=True)
class Selection:
    project_id: int
    schema_id: int
    schema_name: str
    statuses: tuple[str, ...] = ()
    """Only items with one of these statuses; empty means every labelled item."""
    dataset_id: int | None = None
    """Only members of this dataset (internal id)."""


def export_page(session: Session, selection: Selection, *, after: int,
                limit: int) -> Sequence[Any]:
    """Up to `limit` labelled items with internal id > `after`, in id order.

    The state row points at the annotation behind the current label (a reviewed label is kept
    when the model labels the item again), so that annotation says who decided.
    """
    query = (
        select(Item.id.label("pk"), Item.external_id, Item.text, Item.meta,
               ItemState.label, ItemState.confidence, ItemState.status,
               ItemState.schema_version, ItemState.model_label, ItemState.model_confidence,
               Annotation.labels, Annotation.source, Annotation.model_id,
               Annotation.created_at.label("annotated_at"))
        .join(ItemState, (ItemState.item_id == Item.id)
              & (ItemState.schema_id == selection.schema_id))
        .join(Annotation, Annotation.id == ItemState.annotation_id)
        .where(Item.project_id == selection.project_id, Item.id > after)
    )
    if selection.statuses:
        query = query.where(ItemState.status.in_(selection.statuses))
    if selection.dataset_id is not None:
        query = query.join(DatasetItem, (DatasetItem.item_id == Item.id)
                           & (DatasetItem.dataset_id == selection.dataset_id))
    return session.execute(query.order_by(Item.id).limit(limit)).all()
