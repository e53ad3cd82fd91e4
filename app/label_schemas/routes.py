from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header, Request, Response
from sqlalchemy.orm import Session

from app.body import RawBody
from app.deps import Admin, RuntimeDep, SessionDep, Viewer
from app.label_schemas import repository, service
from app.label_schemas.api import SchemaListOut, SchemaPushOut, SchemaVersionOut
from app.label_schemas.format import parse_document, validate_schema_document
from app.label_schemas.models import LabelSchema, SchemaVersion
from app.labelling import service as labelling
from app.labelling.prior_fitter import wake_prior_fitter
from app.runtime import Runtime
from app.validation import VersionInPath

router = APIRouter(prefix="/v1/schemas", tags=["schemas"])

_DOC_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"$ref": "#/components/schemas/LabelSchemaDoc"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/LabelSchemaDoc"}},
        },
    }
}


@router.post("", status_code=201, response_model=SchemaPushOut, openapi_extra=_DOC_BODY,
             responses={200: {"model": SchemaPushOut, "description": "Unchanged: latest version"}})
def push_schema(
    principal: Admin,
    session: SessionDep,
    body: RawBody,
    response: Response,
    request: Request,
    background: BackgroundTasks,
    content_type: Annotated[str | None, Header()] = None,
) -> SchemaPushOut:
    """Validate and store a label schema (YAML or JSON). Same content as the latest version: 200 and
    that version; changed content: 201 and a new immutable version, whose prior calibrator is
    then fitted in the background (from its examples, asking the judge where it may help)."""
    doc = validate_schema_document(parse_document(body, content_type))
    result = service.push_schema(session, principal.project_id, doc)
    if not result.created:
        response.status_code = 200
    else:
        background.add_task(wake_prior_fitter, request.app)
    out = SchemaVersionOut.of(result.schema, result.version, with_labels=False)
    return SchemaPushOut(**out.model_dump(), created=result.created)


@router.get("", response_model=SchemaListOut)
def list_schemas(principal: Viewer, session: SessionDep) -> SchemaListOut:
    """List the project's label schemas with their latest version."""
    items = []
    for schema in repository.list_schemas(session, principal.project_id):
        version = repository.get_version(session, schema)
        items.append(SchemaVersionOut.of(schema, version, with_labels=False))
    return SchemaListOut(items=items)


@router.get("/{name}", response_model=SchemaVersionOut)
def get_latest(name: str, principal: Viewer, session: SessionDep,
               runtime: RuntimeDep) -> SchemaVersionOut:
    """The latest version of a label schema, with its labels, its target precision and the
    cutoff that target implies now."""
    schema = repository.get_schema(session, principal.project_id, name)
    return _with_cutoff(session, runtime, schema, repository.get_version(session, schema))


@router.get("/{name}/versions/{version}", response_model=SchemaVersionOut)
def get_version(name: str, version: VersionInPath, principal: Viewer,
                session: SessionDep, runtime: RuntimeDep) -> SchemaVersionOut:
    """One version of a label schema (versions are immutable), with its target precision and
    the cutoff that target implies now."""
    schema = repository.get_schema(session, principal.project_id, name)
    return _with_cutoff(session, runtime, schema,
                        repository.get_version(session, schema, version))


def _with_cutoff(session: Session, runtime: Runtime, schema: LabelSchema,
                 version: SchemaVersion) -> SchemaVersionOut:
    out = SchemaVersionOut.of(schema, version, with_labels=True)
    target, cutoff, calibrator_version = labelling.target_and_cutoff(session, runtime, schema,
                                                                     version)
    return out.model_copy(update={"target_precision": target, "cutoff": cutoff,
                                  "calibrator_version": calibrator_version})
