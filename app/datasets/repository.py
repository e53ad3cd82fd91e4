"""Queries for datasets; always scoped to one project."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.datasets.models import Dataset, DatasetItem
from app.errors import NotFound


def get_dataset(session: Session, project_id: int, external_id: str) -> Dataset:
    dataset = session.scalar(select(Dataset).where(Dataset.project_id == project_id,
                                                   Dataset.external_id == external_id))
    if dataset is None:
        raise NotFound(f"no dataset with id {external_id!r} in this project")
    return dataset


def list_datasets(session: Session, project_id: int, *, before: int | None,
                  limit: int) -> list[Dataset]:
    """Newest first, keyset on the internal id."""
    query = select(Dataset).where(Dataset.project_id == project_id)
    if before is not None:
        query = query.where(Dataset.id < before)
    return list(session.scalars(query.order_by(Dataset.id.desc()).limit(limit)))


def add_members(session: Session, dataset_id: int, item_ids: Iterable[int]) -> None:
    rows = [{"dataset_id": dataset_id, "item_id": pk} for pk in dict.fromkeys(item_ids)]
    if not rows:
        return
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" \
        else sqlite.insert
    # An item may occur in several batches of one file (the same id twice).
    session.execute(insert(DatasetItem).on_conflict_do_nothing(
        index_elements=["dataset_id", "item_id"]), rows)


def member_ids(session: Session, dataset_id: int, *, after: int = 0,
               limit: int = 1000) -> list[int]:
    """Internal ids of the dataset's items in id order, one keyset page (for batch jobs)."""
    return list(session.scalars(
        select(DatasetItem.item_id)
        .where(DatasetItem.dataset_id == dataset_id, DatasetItem.item_id > after)
        .order_by(DatasetItem.item_id).limit(limit)))


def delete_dataset(session: Session, dataset_id: int) -> None:
    """Delete the dataset row (its memberships go with it; the items stay)."""
    session.execute(delete(Dataset).where(Dataset.id == dataset_id))
