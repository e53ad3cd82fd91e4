from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.auth.service import Principal, key_is_live
from app.deps import Editor, RuntimeDep, SessionDep, Viewer
from app.jobs import repository, service
from app.jobs.api import JobCounts, JobCreate, JobOut
from app.jobs.models import FINAL_STATES, Job
from app.label_schemas.models import LabelSchema

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def job_out(session, job: Job) -> JobOut:  # type: ignore[no-untyped-def]
    schema = session.get(LabelSchema, job.schema_id)
    speed = service.progress(job)
    error = job.error
    if error is None and job.state == "running":
        waiting = repository.last_chunk_error(session, job.id)
        error = f"retrying after: {waiting}" if waiting else None
    return JobOut(
        id=job.external_id, state=job.state, schema_name=schema.name if schema else "?",
        schema_version=job.schema_version, params=job.params, selection=job.selection,
        total=job.total, done=job.done,
        counts=JobCounts(accepted=job.n_accepted, needs_review=job.n_needs_review,
                         no_match=job.n_no_match),
        judge_calls_per_item=speed.judge_calls_per_item,
        items_per_second=speed.items_per_second, eta_seconds=speed.eta_seconds, error=error,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at)


@router.post("", status_code=202, response_model=JobOut, response_model_by_alias=True)
def create_job(body: JobCreate, principal: Editor, session: SessionDep, runtime: RuntimeDep,
               request: Request, background: BackgroundTasks) -> JobOut:
    """Queue a batch job over a dataset or an item selection; poll it, or follow its events."""
    job = service.create_job(session, principal, runtime, body)
    chunk_ids = service.chunk_ids(session, job)
    # After the response, so after the commit: workers must find the chunks when told.
    background.add_task(request.app.state.dispatcher.chunks_queued, chunk_ids)
    return job_out(session, job)


@router.get("", response_model=list[JobOut], response_model_by_alias=True)
def list_jobs(principal: Viewer, session: SessionDep,
              limit: int = Query(50, ge=1, le=500)) -> list[JobOut]:
    """List the project's batch jobs, newest first."""
    return [job_out(session, job) for job in
            repository.list_jobs(session, principal.project_id, limit)]


@router.get("/{job_id}", response_model=JobOut, response_model_by_alias=True)
def get_job(job_id: str, principal: Viewer, session: SessionDep) -> JobOut:
    """A job's state and progress: done/total, items per second, ETA and counts by status."""
    return job_out(session, repository.get_job(session, principal.project_id, job_id))


@router.post("/{job_id}/cancel", response_model=JobOut, response_model_by_alias=True)
def cancel_job(job_id: str, principal: Editor, session: SessionDep) -> JobOut:
    """Stop a job: chunks not started are left undone; a chunk being labelled stops at its
    next commit (within seconds), keeping the labels written so far."""
    job = repository.get_job(session, principal.project_id, job_id)
    return job_out(session, service.cancel_job(session, job))


@router.get("/{job_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`progress` events, then one `end` event."}})
def job_events(job_id: str, principal: Viewer, session: SessionDep, request: Request,
               ) -> StreamingResponse:
    """Server-sent events: the job as JSON whenever it changes (checked every second), and an
    `end` event when it succeeds, fails or is cancelled."""
    repository.get_job(session, principal.project_id, job_id)  # 404 before the stream starts
    factory = request.app.state.session_factory
    return StreamingResponse(_events(factory, principal, job_id, request),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(factory, principal: Principal, job_id: str,  # type: ignore[no-untyped-def]
                  request: Request) -> AsyncIterator[str]:
    def read() -> JobOut | None:
        # The key is checked on every poll, not only when the stream opened: a revoked key's
        # open stream kept streaming (57 events after the revoke).
        with factory() as session:
            if not key_is_live(session, principal.key_id):
                return None
            return job_out(session, repository.get_job(session, principal.project_id, job_id))

    last = None
    quiet = 0
    while not await request.is_disconnected():
        out = await run_in_threadpool(read)
        if out is None:
            yield f"event: end\ndata: {json.dumps({'state': 'key_revoked'})}\n\n"
            return
        data = out.model_dump_json(by_alias=True)
        if data != last:
            yield f"event: progress\ndata: {data}\n\n"
            last, quiet = data, 0
        elif (quiet := quiet + 1) % 15 == 0:
            yield ": still running\n\n"  # keeps proxies from closing an idle stream
        if out.state in FINAL_STATES:
            yield f"event: end\ndata: {json.dumps({'state': out.state})}\n\n"
            return
        await asyncio.sleep(1.0)
