"""Queries for jobs and their chunks. The chunk table is the queue of record: a worker claims a
chunk under a lease, and a chunk whose worker died goes back to the queue when its lease ends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Select, and_, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session

from app.datasets.models import DatasetItem
from app.db import utcnow
from app.errors import NotFound
from app.items.models import Item
from app.jobs.models import FINAL_STATES, Job, JobChunk
from app.labelling.models import Annotation, ItemState


def get_job(session: Session, project_id: int, external_id: str) -> Job:
    job = session.scalar(select(Job).where(Job.project_id == project_id,
                                           Job.external_id == external_id))
    if job is None:
        raise NotFound(f"no job with id {external_id!r} in this project")
    return job


def job_by_id(session: Session, job_id: int) -> Job | None:
    """The job with this internal id (for rows that point at one, e.g. an annotation)."""
    return session.get(Job, job_id)


def list_jobs(session: Session, project_id: int, limit: int) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.project_id == project_id)
                                .order_by(Job.id.desc()).limit(limit)))


def selection_query(project_id: int, schema_id: int, *, dataset_id: int | None,
                    statuses: list[str] | None, unlabelled: bool, include_reviewed: bool,
                    among: list[int] | None = None) -> Select:
    """Internal ids of the selected items, in id order (`among`: only these internal ids)."""
    query = select(Item.id).where(Item.project_id == project_id)
    if dataset_id is not None:
        query = query.join(DatasetItem, and_(DatasetItem.item_id == Item.id,
                                             DatasetItem.dataset_id == dataset_id))
    if among is not None:
        query = query.where(Item.id.in_(among))
    state = select(ItemState.status).where(ItemState.item_id == Item.id,
                                           ItemState.schema_id == schema_id)
    if unlabelled:
        query = query.where(~exists(state))
    if statuses is not None:
        query = query.where(exists(state.where(ItemState.status.in_(statuses))))
    if not include_reviewed:
        query = query.where(~exists(state.where(ItemState.status == "reviewed")))
    return query.order_by(Item.id)


def stream_ids(session: Session, query: Select, batch: int = 10_000) -> Iterator[int]:
    for row in session.execute(query.execution_options(yield_per=batch)):
        yield row[0]


def _claimable(now):  # type: ignore[no-untyped-def]
    live_job = exists(select(Job.id).where(Job.id == JobChunk.job_id,
                                           Job.state.not_in(FINAL_STATES)))
    waiting = and_(JobChunk.state == "pending",
                   or_(JobChunk.not_before.is_(None), JobChunk.not_before <= now))
    orphaned = and_(JobChunk.state == "running", JobChunk.lease_expires_at < now)
    return and_(or_(waiting, orphaned), live_job)


def claim_chunk(session: Session, worker: str, lease_seconds: int,
                chunk_id: int | None = None) -> JobChunk | None:
    """Lease one claimable chunk (that one, or the oldest), or None.

    One UPDATE takes it; on PostgreSQL the subquery locks the row FOR UPDATE SKIP LOCKED, and
    SQLite has one writer at a time, so a chunk is never leased to two workers at once.
    """
    now = utcnow()
    pick = select(JobChunk.id).where(_claimable(now))
    if chunk_id is not None:
        pick = pick.where(JobChunk.id == chunk_id)
    pick = pick.order_by(JobChunk.job_id, JobChunk.seq).limit(1).with_for_update(skip_locked=True)
    claimed = session.execute(
        update(JobChunk).where(JobChunk.id.in_(pick.scalar_subquery()))
        .values(state="running", worker=worker, attempts=JobChunk.attempts + 1,
                lease_expires_at=now + timedelta(seconds=lease_seconds))
        .returning(JobChunk.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    return session.get(JobChunk, claimed) if claimed is not None else None


def renew_lease(session: Session, chunk_id: int, worker: str, lease_seconds: int) -> bool:
    result = cast(CursorResult[Any], session.execute(
        update(JobChunk)
        .where(JobChunk.id == chunk_id, JobChunk.worker == worker, JobChunk.state == "running")
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)))
    return result.rowcount == 1


def complete_chunk(session: Session, chunk_id: int, worker: str) -> bool:
    """Mark the chunk done if this worker still holds it (else another worker took it over)."""
    result = cast(CursorResult[Any], session.execute(
        update(JobChunk)
        .where(JobChunk.id == chunk_id, JobChunk.worker == worker, JobChunk.state == "running")
        .values(state="done", finished_at=utcnow(), lease_expires_at=None)
        .execution_options(synchronize_session=False)))
    return result.rowcount == 1


def release_after_failure(session: Session, chunk_id: int, worker: str, error: str,
                          backoff_seconds: float, give_up: bool) -> None:
    values: dict[str, Any] = {"lease_expires_at": None, "last_error": error[:2000]}
    if give_up:
        values["state"] = "failed"
    else:
        values["state"] = "pending"
        values["not_before"] = utcnow() + timedelta(seconds=backoff_seconds)
    session.execute(update(JobChunk)
                    .where(JobChunk.id == chunk_id, JobChunk.worker == worker)
                    .values(**values).execution_options(synchronize_session=False))


def add_progress(session: Session, job_id: int, done: int, accepted: int, needs_review: int,
                 no_match: int, judge_calls: int) -> None:
    # Increments, not read-modify-write: chunks of one job finish on many workers at once.
    session.execute(update(Job).where(Job.id == job_id).values(
        done=Job.done + done, n_accepted=Job.n_accepted + accepted,
        n_needs_review=Job.n_needs_review + needs_review, n_no_match=Job.n_no_match + no_match,
        judge_calls=Job.judge_calls + judge_calls).execution_options(synchronize_session=False))


def _changed(session: Session, statement: Any) -> bool:
    result = cast(CursorResult[Any], session.execute(
        statement.execution_options(synchronize_session=False)))
    return result.rowcount == 1


def mark_running(session: Session, job_id: int) -> bool:
    """True for the chunk that started the job (the others find it running already)."""
    return _changed(session, update(Job).where(Job.id == job_id, Job.state == "queued")
                    .values(state="running", started_at=utcnow()))


def finish_job_if_complete(session: Session, job_id: int) -> bool:
    """Run after a chunk's commit: whichever chunk commits last sees nothing left to do."""
    open_chunks = exists(select(JobChunk.id).where(JobChunk.job_id == job_id,
                                                   JobChunk.state.in_(("pending", "running"))))
    return _changed(session, update(Job)
                    .where(Job.id == job_id, Job.state == "running", ~open_chunks)
                    .values(state="succeeded", finished_at=utcnow()))


def fail_job(session: Session, job_id: int, error: str) -> bool:
    return _changed(session, update(Job).where(Job.id == job_id, Job.state.not_in(FINAL_STATES))
                    .values(state="failed", error=error[:2000], finished_at=utcnow()))


def annotated_item_ids(session: Session, job_id: int, item_ids: list[int]) -> set[int]:
    """Which of these items the job has labelled already (a chunk run again skips them)."""
    found: set[int] = set()
    for start in range(0, len(item_ids), 900):  # a bound-parameter list SQLite can hold
        found.update(session.scalars(select(Annotation.item_id).where(
            Annotation.job_id == job_id, Annotation.item_id.in_(item_ids[start:start + 900]))))
    return found


def last_chunk_error(session: Session, job_id: int) -> str | None:
    return session.scalar(select(JobChunk.last_error).where(
        JobChunk.job_id == job_id, JobChunk.last_error.is_not(None), JobChunk.state != "done")
        .order_by(JobChunk.id).limit(1))


def orphaned_chunk_ids(session: Session, limit: int = 1000) -> list[int]:
    """Leased chunks whose worker went silent (their lease ran out)."""
    now = utcnow()
    return list(session.scalars(select(JobChunk.id).where(
        JobChunk.state == "running", JobChunk.lease_expires_at < now).limit(limit)))


def running_chunks_of(session: Session, identity: str) -> list[tuple[int, str]]:
    """(chunk id, worker) of the leased chunks whose worker name starts with `identity:`."""
    return [(chunk_id, worker or "") for chunk_id, worker in session.execute(
        select(JobChunk.id, JobChunk.worker).where(
            JobChunk.state == "running",
            JobChunk.worker.startswith(identity + ":", autoescape=True)))]


def release_chunks(session: Session, holders: dict[int, str]) -> list[int]:
    """Give chunks back to the queue at once, each only if `holders` still names its worker;
    returns the ids of those given back."""
    released = []
    for chunk_id, worker in holders.items():
        if _changed(session, update(JobChunk).where(
                JobChunk.id == chunk_id, JobChunk.worker == worker, JobChunk.state == "running")
                .values(state="pending", worker=None, lease_expires_at=None, not_before=None)):
            released.append(chunk_id)
    return released


def count_chunks(session: Session, job_id: int) -> dict[str, int]:
    return dict(session.execute(select(JobChunk.state, func.count())
                                .where(JobChunk.job_id == job_id)
                                .group_by(JobChunk.state)).all())


def add_chunks(session: Session, rows: list[dict[str, Any]]) -> None:
    session.execute(insert(JobChunk), rows)


def chunk_ids(session: Session, job_id: int) -> list[int]:
    """The job's chunks in order."""
    return list(session.scalars(select(JobChunk.id).where(JobChunk.job_id == job_id)
                                .order_by(JobChunk.seq)))


def job_state(session: Session, job_id: int) -> str | None:
    """The job's state as stored now (a cancel from another request shows at once)."""
    return session.scalar(select(Job.state).where(Job.id == job_id))


def job_item_ids(session: Session, job_id: int) -> list[int]:
    """Every item id of the job, in chunk order."""
    return [item_id for ids in session.scalars(
        select(JobChunk.item_ids).where(JobChunk.job_id == job_id).order_by(JobChunk.seq))
        for item_id in ids]
