"""API models for label schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.label_schemas.models import LabelSchema, SchemaVersion


class SchemaVersionOut(BaseModel):
    name: str
    version: int
    latest_version: int
    content_hash: str
    description: str
    multi_label: bool
    label_count: int
    created_at: datetime
    labels: list[dict[str, Any]] | None = None

    @classmethod
    def of(cls, schema: LabelSchema, version: SchemaVersion, *,
           with_labels: bool) -> SchemaVersionOut:
        return cls(
            name=schema.name,
            version=version.version,
            latest_version=schema.latest_version,
            content_hash=version.content_hash,
            description=version.description,
            multi_label=version.multi_label,
            label_count=version.label_count,
            created_at=version.created_at,
            labels=version.content["labels"] if with_labels else None,
        )


class SchemaPushOut(SchemaVersionOut):
    created: bool
    """False when the content equals the latest version (nothing stored)."""


class SchemaListOut(BaseModel):
    items: list[SchemaVersionOut]
