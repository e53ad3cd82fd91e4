"""Storing label schemas as immutable, content-addressed versions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.label_schemas import repository
from app.label_schemas.format import LabelSchemaDoc
from app.label_schemas.models import LabelSchema, SchemaVersion


@dataclass(frozen=True)
class PushResult:
    schema: LabelSchema
    version: SchemaVersion
    created: bool


def push_schema(session: Session, project_id: int, doc: LabelSchemaDoc) -> PushResult:
    """Store `doc` as the schema's next version, unless it equals the latest one (idempotent).

    Pushing content equal to an older, non-latest version makes a new version: "latest" always
    means "what was pushed last".
    """
    digest = doc.content_hash()
    schema = repository.ensure_schema(session, project_id, doc.name)
    if schema.latest_version:
        latest = repository.get_version(session, schema)
        if latest.content_hash == digest:
            return PushResult(schema, latest, created=False)
    version = SchemaVersion(
        schema_id=schema.id,
        version=schema.latest_version + 1,
        content_hash=digest,
        description=doc.description,
        multi_label=doc.multi_label,
        label_count=len(doc.labels),
        content=doc.model_dump(mode="json"),
    )
    session.add(version)
    schema.latest_version = version.version
    session.flush()  # the schema row is locked: no concurrent push takes this version number
    return PushResult(schema, version, created=True)


def document_of(version: SchemaVersion) -> LabelSchemaDoc:
    """The document stored in a version."""
    return LabelSchemaDoc.model_validate(version.content)
