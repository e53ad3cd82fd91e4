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
    target_precision: float | None = None
    """The precision wanted of labels accepted without review: the document's, else the
    server's default (shown with one version)."""
    cutoff: float | None = None
    """The confidence cutoff the target implies under the schema's current calibrator (the
    prior from its examples before 30 reviews); null while the prior is still being fitted
    after a push, or when no cutoff reaches the target."""
    calibrator_version: int | None = None
    """0: the prior fitted on the schema's examples; 1 and up: fitted on reviews."""

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
