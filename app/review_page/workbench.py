"""The workbench pages beside the review queue: items (search, filters, bulk actions, export),
datasets (upload), jobs (start, live progress, cancel) and schemas (versions, push).

Same rules as the review page: a browser session, the page header on every call that changes
something, and the role each action needs (viewers read, reviewers review, editors upload and run
jobs and bulk actions, admins push schemas). Handlers call the same services as the JSON API.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any, get_args

import anyio
from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.auth.models import Role
from app.auth.service import Principal
from app.datasets import repository as datasets
from app.datasets import service as dataset_service
from app.datasets.upload import open_dataset_form
from app.deps import RuntimeDep, SessionDep
from app.errors import InvalidInput
from app.exports.formats import FORMATS
from app.exports.repository import Selection
from app.exports.service import export_response
from app.jobs import repository as jobs
from app.jobs import service as job_service
from app.jobs.api import JobIn, JobOut, Strategy
from app.jobs.models import FINAL_STATES
from app.jobs.view import events_response, job_out
from app.label_schemas import repository as schemas
from app.label_schemas import service as schema_service
from app.label_schemas.format import parse_document, validate_schema_document
from app.label_schemas.models import LabelSchema
from app.labelling import service as labelling
from app.labelling.models import STATUSES
from app.labelling.repository import ItemFilter
from app.review import service as review_service
from app.review_page import browse
from app.review_page.routes import PageUser, _render, _to_sign_in, page_role
from app.review_page.uploads import PageUpload

router = APIRouter(prefix="/review", include_in_schema=False)

PageEditor = Annotated[Principal, Depends(page_role(Role.editor))]
PageAdmin = Annotated[Principal, Depends(page_role(Role.admin))]
MAX_SCHEMA_FILE_BYTES = 16 * 1024 * 1024


def _common(principal: Principal, session: Any, page: str,
            schema: LabelSchema | None = None) -> dict[str, Any]:
    return {"page": page, "principal": principal, "schema": schema,
            "schemas": schemas.list_schemas(session, principal.project_id), "Role": Role}


def _schema_or_first(session: Any, principal: Principal, name: str | None) -> LabelSchema | None:
    if name:
        return schemas.get_schema(session, principal.project_id, name)
    found = schemas.list_schemas(session, principal.project_id)
    return found[0] if found else None


# --- items --------------------------------------------------------------------------------------

class FilterIn(BaseModel):
    """The items browser's filters (the page's query string, or a bulk action's body)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_name: str = Field(alias="schema", min_length=1, max_length=100)
    q: str | None = Field(None, max_length=500)
    status: str | None = Field(None, max_length=20)
    label: str | None = Field(None, max_length=200)
    min_confidence: float | None = Field(None, ge=0, le=1)
    max_confidence: float | None = Field(None, ge=0, le=1)
    dataset: str | None = Field(None, max_length=40)
    job: str | None = Field(None, max_length=40)
    reviewer: str | None = Field(None, max_length=100)


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _item_filter(session: Any, principal: Principal, body: FilterIn
                 ) -> tuple[LabelSchema, ItemFilter]:
    schema = schemas.get_schema(session, principal.project_id, body.schema_name)
    status = _blank_to_none(body.status)
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    dataset = _blank_to_none(body.dataset)
    job = _blank_to_none(body.job)
    return schema, ItemFilter(
        schema_id=schema.id, q=_blank_to_none(body.q), status=status,
        label=_blank_to_none(body.label), min_confidence=body.min_confidence,
        max_confidence=body.max_confidence,
        dataset_id=datasets.get_dataset(session, principal.project_id, dataset).id
        if dataset else None,
        job_id=jobs.get_job(session, principal.project_id, job).id if job else None,
        reviewer=_blank_to_none(body.reviewer))


def _float_or_none(value: str | None, name: str) -> float | None:
    value = _blank_to_none(value)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a number between 0 and 1, not {value!r}") from None
    if not 0 <= number <= 1:
        raise InvalidInput(f"{name} must be between 0 and 1, not {value}")
    return number


@dataclass(frozen=True)
class PageFilters:
    """The items browser's filters as its query string carries them (blank fields mean any)."""

    q: str | None
    status: str | None
    label: str | None
    min_confidence: float | None
    max_confidence: float | None
    dataset: str | None
    job: str | None
    reviewer: str | None

    def to_body(self, schema_name: str) -> FilterIn:
        return FilterIn(schema_name=schema_name, **asdict(self))


def page_filters(q: Annotated[str | None, Query(max_length=500)] = None,
                 status: Annotated[str | None, Query(max_length=20)] = None,
                 label: Annotated[str | None, Query(max_length=200)] = None,
                 min_confidence: Annotated[str | None, Query(max_length=20)] = None,
                 max_confidence: Annotated[str | None, Query(max_length=20)] = None,
                 dataset: Annotated[str | None, Query(max_length=40)] = None,
                 job: Annotated[str | None, Query(max_length=40)] = None,
                 reviewer: Annotated[str | None, Query(max_length=100)] = None) -> PageFilters:
    # The confidence fields arrive as text: an empty box is "any", not a validation error.
    return PageFilters(q=q, status=status, label=label,
                       min_confidence=_float_or_none(min_confidence, "min_confidence"),
                       max_confidence=_float_or_none(max_confidence, "max_confidence"),
                       dataset=dataset, job=job, reviewer=reviewer)


PageFiltersDep = Annotated[PageFilters, Depends(page_filters)]


@router.get("/items", response_class=HTMLResponse)
def items_page(request: Request, principal: PageUser, session: SessionDep,
               chosen_filters: PageFiltersDep,
               schema: Annotated[str | None, Query(max_length=100)] = None,
               after: Annotated[int | None, Query(ge=0)] = None) -> Response:
    if principal is None:
        return _to_sign_in()
    chosen = _schema_or_first(session, principal, schema)
    context = _common(principal, session, "items", chosen)
    if chosen is None:
        return _render(request, "items.html", {**context, "rows": [], "filters": {}})
    filters = chosen_filters.to_body(chosen.name)
    label_schema, item_filter = _item_filter(session, principal, filters)
    rows, next_after = browse.page(session, principal.project_id, item_filter, after)
    version = schemas.get_version(session, label_schema)
    query = {k: v for k, v in filters.model_dump(by_alias=True).items() if v not in (None, "")}
    return _render(request, "items.html", {
        **context, "rows": rows, "next_after": next_after, "after": after,
        "total": browse.count(session, principal.project_id, item_filter),
        "filters": query, "statuses": STATUSES,
        "label_names": [x["name"] for x in version.content["labels"]],
        "datasets": datasets.list_datasets(
            session, principal.project_id, before=None, limit=100),
        "jobs": jobs.list_jobs(session, principal.project_id, 100),
        "formats": list(FORMATS), "can_review": principal.role.allows(Role.reviewer)})


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filters: FilterIn
    action: str = Field(max_length=30)
    min_confidence: float | None = Field(None, ge=0, le=1)
    expected: int | None = Field(None, ge=0)
    """The count the person confirmed; without it nothing changes and the count is returned."""


class BulkOut(BaseModel):
    count: int
    done: bool
    batch: str | None = None
    """Once done: the action's id, to undo it with /review/api/bulk/undo."""


@router.post("/api/bulk", response_model=BulkOut)
def bulk(body: BulkIn, principal: PageEditor, session: SessionDep) -> BulkOut:
    _, item_filter = _item_filter(session, principal, body.filters)
    if body.action not in browse.ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(browse.ACTIONS)}")
    if body.expected is None:
        return BulkOut(count=browse.count_targets(session, principal.project_id, item_filter,
                                                  body.action, body.min_confidence), done=False)
    applied = browse.apply(session, principal, item_filter, body.action, body.min_confidence,
                           body.expected)
    return BulkOut(count=applied.count, done=True, batch=applied.batch)


class BulkUndoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: str = Field(min_length=1, max_length=40, pattern=r"^[0-9a-f]+$")


class BulkUndoOut(BaseModel):
    count: int
    """Items given back their earlier decision."""
    changed: int
    """Items left as they are: decided again since the action."""


@router.post("/api/bulk/undo", response_model=BulkUndoOut)
def bulk_undo(body: BulkUndoIn, principal: PageEditor, session: SessionDep) -> BulkUndoOut:
    undone = browse.undo(session, principal, body.batch)
    return BulkUndoOut(count=undone.count, changed=undone.changed)


@router.get("/export")
def export(request: Request, principal: PageUser, session: SessionDep,
           chosen_filters: PageFiltersDep,
           schema: Annotated[str, Query(min_length=1, max_length=100)],
           fmt: Annotated[str, Query(alias="format", max_length=20)] = "jsonl") -> Response:
    """The export of exactly the items the items browser shows under the same filters, as the
    API streams it (no filter: every labelled item of the schema)."""
    if principal is None:
        return _to_sign_in()
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    label_schema, item_filter = _item_filter(session, principal, chosen_filters.to_body(schema))
    selection = Selection(project_id=principal.project_id, schema_id=label_schema.id,
                          schema_name=label_schema.name, items=item_filter)
    return export_response(request, selection, fmt)


# --- datasets -----------------------------------------------------------------------------------

@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request, principal: PageUser, session: SessionDep) -> Response:
    if principal is None:
        return _to_sign_in()
    last_job: dict[str, Any] = {}
    for job in jobs.list_jobs(session, principal.project_id, 200):  # newest first
        dataset = job.selection.get("dataset")
        if dataset and dataset not in last_job:
            last_job[dataset] = job
    listed = datasets.list_datasets(session, principal.project_id, before=None, limit=200)
    return _render(request, "datasets.html", {
        **_common(principal, session, "datasets"), "datasets": listed,
        "upload_status": {d.external_id: dataset_service.upload_status(d) for d in listed},
        "last_job": last_job, "final_states": FINAL_STATES})


@router.post("/api/datasets", response_model=None)
async def upload(request: Request, principal: PageEditor, session: SessionDep) -> Response:
    """The browser's upload: the same streamed reader and bad-rows report as POST /v1/datasets,
    answered with the reading's progress as JSON lines (see app/review_page/uploads.py)."""
    session.close()  # the reading thread has its own session; hold no transaction meanwhile
    form, source = await open_dataset_form(request)
    try:
        run = PageUpload(request.app.state.session_factory, principal.project_id, source)
        run.start()
    except BaseException:
        await form.close()
        raise
    kind, first = await anyio.to_thread.run_sync(run.first_event)
    if kind == "error":
        raise first  # refused before any row was read: the usual 4xx JSON answer
    return StreamingResponse(run.lines(first), media_type="application/x-ndjson",
                             headers={"Cache-Control": "no-store"})


# --- jobs ---------------------------------------------------------------------------------------

@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, principal: PageUser, session: SessionDep,
              dataset: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    if principal is None:
        return _to_sign_in()
    return _render(request, "jobs.html", {
        **_common(principal, session, "jobs"),
        "jobs": [job_out(session, j)
                 for j in jobs.list_jobs(session, principal.project_id, 100)],
        "datasets": datasets.list_datasets(
            session, principal.project_id, before=None, limit=200),
        "chosen_dataset": dataset, "strategies": get_args(Strategy), "final_states": FINAL_STATES})


class PageJobIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_name: str = Field(alias="schema", min_length=1, max_length=100)
    dataset: str = Field(min_length=1, max_length=40)
    strategy: Strategy | None = None
    target_precision: float | None = Field(None, ge=0.5, le=0.999)


@router.post("/api/jobs", response_model=JobOut, response_model_by_alias=True)
def start_job(body: PageJobIn, principal: PageEditor, session: SessionDep, runtime: RuntimeDep,
              request: Request, background: BackgroundTasks) -> JobOut:
    job = job_service.create_job(session, principal, runtime, JobIn(
        schema_name=body.schema_name, dataset=body.dataset, strategy=body.strategy,
        target_precision=body.target_precision))
    chunk_ids = job_service.chunk_ids(session, job)
    background.add_task(request.app.state.dispatcher.chunks_queued, chunk_ids)
    return job_out(session, job)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str, principal: PageUser,
             session: SessionDep, runtime: RuntimeDep) -> Response:
    if principal is None:
        return _to_sign_in()
    job = jobs.get_job(session, principal.project_id, job_id)
    out = job_out(session, job)
    dataset = job.selection.get("dataset")
    schema = schemas.schema_by_id(session, job.schema_id)
    return _render(request, "job.html", {
        **_common(principal, session, "jobs", schema),
        "job": out, "dataset": dataset, "formats": list(FORMATS),
        "rule": _decision_rule(session, runtime, schema, job.schema_version, job.params)})


def _decision_rule(session: Any, runtime: Any, schema: LabelSchema | None, version: int,
                   params: dict) -> dict:
    """The job's target precision beside the cutoff that decides acceptance: fixed in its
    params (given, or measured on reviews when the job was created), else what the schema's
    current calibrator turns the target into."""
    target = params.get("target_precision")
    if target is None or schema is None:
        return {"target": params.get("requested_target_precision"),
                "cutoff": params.get("cutoff"), "fixed": True}
    _, cutoff, calibrator = labelling.target_and_cutoff(
        session, runtime, schema, schemas.get_version(session, schema, version), target)
    return {"target": target, "cutoff": cutoff, "fixed": False, "calibrator": calibrator}


@router.get("/api/jobs/{job_id}/events")
def job_events(job_id: str, principal: PageUser, session: SessionDep,
               request: Request) -> Response:
    """The job's server-sent progress events for the page (a read: the session suffices)."""
    if principal is None:
        return Response(status_code=401)
    jobs.get_job(session, principal.project_id, job_id)  # 404 before the stream starts
    return events_response(request, principal, job_id)


@router.post("/api/jobs/{job_id}/cancel", response_model=JobOut, response_model_by_alias=True)
def cancel(job_id: str, principal: PageEditor, session: SessionDep) -> JobOut:
    job = jobs.get_job(session, principal.project_id, job_id)
    return job_out(session, job_service.cancel_job(session, job))


# --- schemas ------------------------------------------------------------------------------------

@router.get("/schemas", response_class=HTMLResponse)
def schemas_page(request: Request, principal: PageUser, session: SessionDep) -> Response:
    if principal is None:
        return _to_sign_in()
    context = _common(principal, session, "schemas")
    listed = [(s, schemas.get_version(session, s)) for s in context["schemas"]]
    return _render(request, "schemas.html", {**context, "listed": listed})


@router.get("/schemas/{name}", response_class=HTMLResponse)
def schema_page(request: Request, name: str, principal: PageUser, session: SessionDep,
                runtime: RuntimeDep,
                version: Annotated[int | None, Query(ge=1)] = None) -> Response:
    if principal is None:
        return _to_sign_in()
    label_schema = schemas.get_schema(session, principal.project_id, name)
    shown = schemas.get_version(session, label_schema, version)
    latest = schemas.get_version(session, label_schema)
    stats = review_service.stats(session, label_schema, runtime.settings.engine.cutoff)
    quality = {row["label"]: row for row in stats.per_label}
    counts = browse.label_counts(session, label_schema.id)
    return _render(request, "schema.html", {
        **_common(principal, session, "schemas", label_schema), "shown": shown,
        "latest": latest, "quality": quality, "counts": counts, "stats": stats})


@router.post("/api/schemas", status_code=201)
async def push_schema(request: Request, principal: PageAdmin, session: SessionDep) -> Any:
    """Push a schema file (YAML or JSON) chosen in the browser: the same validation as the API."""
    form = await request.form(max_files=1, max_fields=2)
    try:
        file = form.get("file")
        if file is None or isinstance(file, str):
            raise InvalidInput("choose a schema file (YAML or JSON) as the 'file' part")
        body = await file.read(MAX_SCHEMA_FILE_BYTES + 1)
        if len(body) > MAX_SCHEMA_FILE_BYTES:
            raise InvalidInput(f"the schema file is larger than {MAX_SCHEMA_FILE_BYTES} bytes")
        name = (file.filename or "").lower()
        content_type = "application/json" if name.endswith(".json") else "application/yaml"
    finally:
        await form.close()
    doc = validate_schema_document(parse_document(body, content_type))
    result = schema_service.push_schema(session, principal.project_id, doc)
    return {"name": result.schema.name, "version": result.version.version,
            "created": result.created}
