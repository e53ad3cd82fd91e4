from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import StreamingResponse

from app.deps import Editor, RuntimeDep, SessionDep, Viewer
from app.jobs import repository, service
from app.jobs.api import JobIn, JobOut
from app.jobs.view import events_response, job_out

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.post("", status_code=202, response_model=JobOut, response_model_by_alias=True)
def create_job(body: JobIn, principal: Editor, session: SessionDep, runtime: RuntimeDep,
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
    return events_response(request, principal, job_id)
