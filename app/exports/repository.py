"""The export queries: which decision of each selected item is exported, one keyset page at a
time, plus the two look-ups a typed export needs before its first row (label names, metadata)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, aliased

from app.datasets.models import DatasetItem
from app.items.models import Item
from app.jobs.models import Job
from app.label_schemas.models import SchemaVersion
from app.labelling.models import Annotation, ItemState
from app.labelling.repository import ItemFilter, item_conditions

Decision = Literal["latest", "job"]
"""`latest`: each item's current label (a reviewed label wins over any later model decision);
`job`: the decision one job wrote (annotations are only ever added, so a later job or a review
never erases it)."""


@dataclass(frozen=True)
class Selection:
    project_id: int
    schema_id: int
    schema_name: str
    statuses: tuple[str, ...] = ()
    """Only items with one of these statuses; empty means every labelled item."""
    dataset_id: int | None = None
    """Only members of this dataset (internal id)."""
    job_id: int | None = None
    """Only the items this job labelled (internal id)."""
    job_name: str | None = None
    """The job's external id (said in the export)."""
    decision: Decision = "latest"
    items: ItemFilter | None = None
    """Only the items the items browser shows under this filter (the same conditions)."""

    @property
    def describes(self) -> str:
        """Which decision the export took, as the response header and Parquet metadata say it."""
        if self.decision == "job":
            return f"job {self.job_name}"
        return f"latest, items of job {self.job_name}" if self.job_name else "latest"


def _selected(selection: Selection, *columns: Any) -> Select:
    """`columns` of every selected item with the annotation behind its exported decision."""
    query = select(*columns).where(Item.project_id == selection.project_id)
    if selection.decision == "job":
        # the job's own annotation: one per item (unique job_id, item_id)
        query = query.join(Annotation, (Annotation.item_id == Item.id)
                           & (Annotation.job_id == selection.job_id))
        status = Annotation.status
    else:
        # the state row points at the annotation behind the current label
        query = (query.join(ItemState, (ItemState.item_id == Item.id)
                            & (ItemState.schema_id == selection.schema_id))
                 .join(Annotation, Annotation.id == ItemState.annotation_id))
        status = ItemState.status
        if selection.job_id is not None:
            by_job = aliased(Annotation)
            query = query.join(by_job, (by_job.item_id == Item.id)
                               & (by_job.job_id == selection.job_id))
    if selection.statuses:
        query = query.where(status.in_(selection.statuses))
    if selection.dataset_id is not None:
        query = query.join(DatasetItem, (DatasetItem.item_id == Item.id)
                           & (DatasetItem.dataset_id == selection.dataset_id))
    if selection.items is not None:
        if selection.decision == "job":  # the filter is over the items' current state
            query = query.join(ItemState, (ItemState.item_id == Item.id)
                               & (ItemState.schema_id == selection.schema_id))
        query = query.where(*item_conditions(selection.project_id, selection.items))
    return query


def export_page(session: Session, selection: Selection, *, after: int,
                limit: int) -> Sequence[Any]:
    """Up to `limit` selected items with internal id > `after`, in id order, each with the
    decision the selection exports and the annotation that says who decided (and which job)."""
    decided: tuple[Any, ...]
    if selection.decision == "job":
        # a job's decision is a model decision: it is its own "model" side
        decided = (Annotation.label, Annotation.confidence, Annotation.status,
                   Annotation.schema_version, Annotation.label.label("model_label"),
                   Annotation.confidence.label("model_confidence"))
    else:
        decided = (ItemState.label, ItemState.confidence, ItemState.status,
                   ItemState.schema_version, ItemState.model_label, ItemState.model_confidence)
    query = (_selected(selection, Item.id.label("pk"), Item.external_id, Item.text, Item.meta,
                       *decided, Annotation.labels, Annotation.source, Annotation.model_id,
                       Annotation.created_at.label("annotated_at"),
                       Job.external_id.label("job"))
             .outerjoin(Job, Job.id == Annotation.job_id)
             .where(Item.id > after))
    return session.execute(query.order_by(Item.id).limit(limit)).all()


def metadata_page(session: Session, selection: Selection, *, after: int,
                  limit: int) -> Sequence[Any]:
    """(pk, metadata) of up to `limit` selected items after `after` (only this column is read):
    exports with a column per metadata field must know every field before their first row."""
    return session.execute(_selected(selection, Item.id.label("pk"), Item.meta)
                           .where(Item.id > after).order_by(Item.id).limit(limit)).all()


def label_names(session: Session, schema_id: int) -> tuple[list[str], bool]:
    """Every label name the schema has had (the latest version's in its order, then names only
    older versions had, newest first), and whether its latest version is multi-label.

    A class-index column needs every label an exported row can carry, and items labelled under
    an older version may carry a label the latest version dropped."""
    versions = session.scalars(select(SchemaVersion).where(SchemaVersion.schema_id == schema_id)
                               .order_by(SchemaVersion.version.desc())).all()
    names: dict[str, None] = {}
    for version in versions:
        names.update(dict.fromkeys(x["name"] for x in version.content["labels"]))
    return list(names), bool(versions and versions[0].multi_label)
