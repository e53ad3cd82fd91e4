"""Queries for label schemas (always scoped to one project), and for the exemplar log a schema's
label index syncs from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import dialect_insert
from app.errors import NotFound
from app.items.models import Item
from app.label_schemas.models import LabelSchema, SchemaVersion
from app.labelling.models import Exemplar


def find_schema(session: Session, project_id: int, name: str, *,
                for_update: bool = False) -> LabelSchema | None:
    query = select(LabelSchema).where(LabelSchema.project_id == project_id,
                                      LabelSchema.name == name)
    if for_update:
        # Serialises concurrent pushes of one schema on PostgreSQL (SQLite has one writer
        # anyway). NO KEY UPDATE: it does not wait for (or deadlock with) the key-share locks
        # that inserts referencing the schema (reviews, annotations) hold on its row.
        query = query.with_for_update(key_share=True)
    return session.scalar(query)


def ensure_schema(session: Session, project_id: int, name: str) -> LabelSchema:
    """The schema named `name`, created (with no version yet) if new, and locked for update.

    INSERT .. ON CONFLICT DO NOTHING, not "look, then insert": two pushes of a new schema at
    once both found none and both inserted (5-7 of 8 concurrent pushes answered 500). Here the
    second insert waits for the first to commit and then does nothing.
    """
    session.execute(dialect_insert(session)(LabelSchema)
                    .values(project_id=project_id, name=name, latest_version=0)
                    .on_conflict_do_nothing(index_elements=["project_id", "name"]))
    schema = find_schema(session, project_id, name, for_update=True)
    assert schema is not None  # inserted above, or by the push that won
    return schema


def get_schema(session: Session, project_id: int, name: str) -> LabelSchema:
    schema = find_schema(session, project_id, name)
    if schema is None:
        raise NotFound(f"no label schema named {name!r} in this project")
    return schema


def list_schemas(session: Session, project_id: int) -> list[LabelSchema]:
    return list(session.scalars(
        select(LabelSchema).where(LabelSchema.project_id == project_id).order_by(LabelSchema.name)
    ))


def get_version(session: Session, schema: LabelSchema, version: int | None = None) -> SchemaVersion:
    number = schema.latest_version if version is None else version
    found = session.scalar(
        select(SchemaVersion).where(SchemaVersion.schema_id == schema.id,
                                    SchemaVersion.version == number)
    )
    if found is None:
        raise NotFound(f"label schema {schema.name!r} has no version {number}")
    return found


def get_version_by_id(session: Session, version_id: int) -> SchemaVersion:
    found = session.get(SchemaVersion, version_id)
    if found is None:
        raise NotFound(f"no schema version with id {version_id}")
    return found


def schema_by_id(session: Session, schema_id: int) -> LabelSchema | None:
    """The schema with this internal id (for rows that point at one, e.g. a job)."""
    return session.get(LabelSchema, schema_id)


def exemplars_after(session: Session, schema_id: int, watermark: int) -> Sequence[Any]:
    """The schema's exemplar rows with id > `watermark`, oldest first, with their item's text
    (to embed again when the stored vector came from another embedding model)."""
    return session.execute(
        select(Exemplar.id, Exemplar.item_id, Exemplar.label, Exemplar.embedder_id,
               Exemplar.vector, Item.text)
        .join(Item, Item.id == Exemplar.item_id)
        .where(Exemplar.schema_id == schema_id, Exemplar.id > watermark)
        .order_by(Exemplar.id)
    ).all()
