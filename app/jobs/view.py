"""A job as the API and the workbench page show it: its counts, speed, and the error it is
retrying after."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.auth.service import Principal, key_is_live
from app.jobs import repository, service
from app.jobs.api import JobCountsOut, JobOut
from app.jobs.models import FINAL_STATES, Job
from app.label_schemas import repository as schemas


def job_out(session: Session, job: Job) -> JobOut:
    schema = schemas.schema_by_id(session, job.schema_id)
    speed = service.progress(job)
    error = job.error
    if error is None and job.state == "running":
        waiting = repository.last_chunk_error(session, job.id)
        error = f"retrying after: {waiting}" if waiting else None
    return JobOut(
        id=job.external_id, state=job.state, schema_name=schema.name if schema else "?",
        schema_version=job.schema_version, params=job.params, selection=job.selection,
        total=job.total, done=job.done,
        counts=JobCountsOut(accepted=job.n_accepted, needs_review=job.n_needs_review,
                            no_match=job.n_no_match),
        judge_calls_per_item=speed.judge_calls_per_item,
        items_per_second=speed.items_per_second, eta_seconds=speed.eta_seconds, error=error,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at)


def events_response(request: Request, principal: Principal, job_id: str) -> StreamingResponse:
    """The job's progress as server-sent events (the API and the workbench page stream it)."""
    return StreamingResponse(_events(request.app.state.session_factory, principal, job_id,
                                     request),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(factory: sessionmaker[Session], principal: Principal, job_id: str,
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
