"""Storing label schemas as immutable, content-addressed versions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict
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
    schema = repository.find_schema(session, project_id, doc.name, for_update=True)
    if schema is None:
        schema = LabelSchema(project_id=project_id, name=doc.name, latest_version=0)
        session.add(schema)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            # Another request created the schema first: use theirs.
            schema = repository.get_schema(session, project_id, doc.name)
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
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"label schema {doc.name!r} was changed by a concurrent push; "
                       "send it again") from None
    return PushResult(schema, version, created=True)


def document_of(version: SchemaVersion) -> LabelSchemaDoc:
    """The document stored in a version."""
    return LabelSchemaDoc.model_validate(version.content)
