"""Queries for label schemas; always scoped to one project."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.label_schemas.models import LabelSchema, SchemaVersion


def find_schema(session: Session, project_id: int, name: str, *,
                for_update: bool = False) -> LabelSchema | None:
    query = select(LabelSchema).where(LabelSchema.project_id == project_id,
                                      LabelSchema.name == name)
    if for_update:
        # Serialises concurrent pushes of one schema on PostgreSQL (SQLite has one writer anyway).
        query = query.with_for_update()
    return session.scalar(query)


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
