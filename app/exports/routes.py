from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from app.datasets import repository as datasets
from app.deps import SessionDep, Viewer
from app.errors import InvalidInput
from app.exports.api import STREAM_TYPES, ExportFormat, parse_statuses
from app.exports.repository import Selection
from app.exports.service import export_response
from app.jobs import repository as jobs
from app.label_schemas import repository as schemas
from app.label_studio import labeling_config
from app.labelling.models import STATUSES

router = APIRouter(prefix="/v1/exports", tags=["exports"])

@router.get("", response_class=StreamingResponse,
            responses={200: {"description": "The export, streamed. The header "
                             "`X-Export-Decision` says which decision it took: `latest` or "
                             "`job <id>`.", "content": STREAM_TYPES}})
def export(
    request: Request,
    principal: Viewer,
    session: SessionDep,
    schema: str | None = Query(None, min_length=1, max_length=100,
                               description="Label schema name (optional with `job`: the "
                               "job's schema)."),
    status: str | None = Query(None, max_length=200, description="Only these statuses, "
                               f"comma-separated: {', '.join(STATUSES)}."),
    fmt: Annotated[ExportFormat, Query(
        alias="format", description="jsonl; csv (a column per metadata field, "
        "labels joined with `|`); parquet (label as class indices with the class names in the "
        "file's Hugging Face features: `datasets.load_dataset(\"parquet\", ...)` gives a "
        "ClassLabel); or label-studio (a JSON array of tasks with predictions and reviewed "
        "annotations).")] = "jsonl",
    dataset: str | None = Query(None, max_length=40, description="Only items of this dataset."),
    job: str | None = Query(None, max_length=40, description="Only the items this job "
                            "labelled, with the labels it decided (see `decision`)."),
    decision: Literal["latest", "job"] | None = Query(
        None, description="`job`: the labels the job decided (the default with `job`; a "
        "later job or a review never erases them); `latest`: each item's current label, a "
        "review winning (the default without `job`)."),
) -> StreamingResponse:
    """Every labelled item of a schema (or of one job) with its label, confidence, status, who
    decided (`model` or the reviewer's key name), which job wrote it and which decision the row
    is (`decision`: `job`, `reviewed` or `latest`), streamed in item order."""
    chosen_job = jobs.get_job(session, principal.project_id, job) if job else None
    if decision == "job" and chosen_job is None:
        raise InvalidInput("decision=job needs job=<job id>")
    if schema is not None:
        label_schema = schemas.get_schema(session, principal.project_id, schema)
    elif chosen_job is not None:
        found = schemas.schema_by_id(session, chosen_job.schema_id)
        assert found is not None  # a job is deleted with its schema
        label_schema = found
    else:
        raise InvalidInput("schema is required (or job=<job id>, whose schema is used)")
    if chosen_job is not None and chosen_job.schema_id != label_schema.id:
        raise InvalidInput(f"job {chosen_job.external_id!r} labelled another schema, "
                           f"not {label_schema.name!r}")
    selection = Selection(
        project_id=principal.project_id, schema_id=label_schema.id,
        schema_name=label_schema.name, statuses=parse_statuses(status),
        dataset_id=datasets.get_dataset(session, principal.project_id, dataset).id
        if dataset else None,
        job_id=chosen_job.id if chosen_job else None,
        job_name=chosen_job.external_id if chosen_job else None,
        decision=decision or ("job" if chosen_job else "latest"))
    return export_response(request, selection, fmt)


@router.get("/label-studio-config", response_class=Response,
            responses={200: {"description": "The labeling config (XML).",
                             "content": {"application/xml": {}}}})
def label_studio_config(
    principal: Viewer,
    session: SessionDep,
    schema: str = Query(min_length=1, max_length=100, description="Label schema name."),
) -> Response:
    """The Label Studio labeling config that `format=label-studio` exports fit: every label of
    the schema's latest version as a `<Choice>` with its description as the hint, and
    `choice="multiple"` for a multi-label schema. Paste it into the project's Labeling
    Interface (Code) before importing the tasks."""
    label_schema = schemas.get_schema(session, principal.project_id, schema)
    version = schemas.get_version(session, label_schema)
    labels = [(x["name"], x["description"]) for x in version.content["labels"]]
    return Response(labeling_config.write(labels, multiple=version.multi_label),
                    media_type="application/xml")
