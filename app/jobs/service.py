"""Creating batch jobs and running their chunks.

`run_chunk` is the one function that does a chunk's work wherever it runs: the in-process worker
thread, `rac worker`, or a Celery task. It is idempotent: the chunk's annotations, its item
states, its "done" mark and the job's counters are written in one transaction, and a job writes
at most one annotation per item, so a worker killed at any point loses nothing and a chunk run
twice writes nothing twice.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app import process_identity as identity
from app.auth.service import Principal
from app.calibration import service as calibration
from app.datasets import repository as datasets
from app.datasets.service import upload_status
from app.db import utcnow
from app.errors import Conflict, InvalidInput
from app.items import repository as items
from app.jobs import items_cutoff, repository
from app.jobs.api import JobIn
from app.jobs.models import FINAL_STATES, Job, JobChunk
from app.label_schemas import repository as schemas
from app.label_schemas.models import LabelSchema
from app.labelling import service as labelling
from app.rac.decision import ClassifyParams
from app.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 30
"""Attempts per chunk before the job fails. With back-off capped at five minutes this outlasts
an LLM server outage of about two hours."""


def reclaim_dead_incarnations(factory: sessionmaker[Session], worker_id: str | None) -> list[int]:
    """Give back at once the chunks a dead incarnation of this worker still holds (a crash or a
    SIGKILL left them leased): otherwise its job would stall until their leases ran out.
    Returns the released chunks' ids (a Celery worker must queue them again: their messages
    stay unacknowledged in the broker until its visibility timeout, an hour)."""
    with factory() as session:
        held = repository.running_chunks_of(session, worker_id or identity.default_identity())
        dead = {chunk_id: holder for chunk_id, holder in held
                if identity.held_by_dead_incarnation(holder, worker_id)}
        released = repository.release_chunks(session, dead) if dead else []
        session.commit()
    if released:
        log.info("reclaimed %d chunk(s) a dead incarnation of this worker held: %s",
                 len(released), ", ".join(sorted(set(dead.values()))))
    return released


def create_job(session: Session, principal: Principal, runtime: Runtime, body: JobIn) -> Job:
    """Select the items, split them into chunks of ids, and queue the job (nothing is labelled
    here). Parameters are fixed now, so every chunk of the job decides the same way."""
    schema = schemas.get_schema(session, principal.project_id, body.schema_name)
    version = schemas.get_version(session, schema, body.version)
    cutoff, target = body.cutoff, body.target_precision
    if target is not None:
        answer = calibration.cutoff_for(session, schema, target, runtime)
        if answer.choice.cutoff is not None:  # measured on reviews: fixed for the whole job
            cutoff, target = answer.choice.cutoff, None
    params = runtime.params(multi_label=version.multi_label,
                            schema_target=version.content.get("target_precision"),
                            top_k=body.top_k,
                            cutoff=cutoff, target_precision=target,
                            accept_threshold=body.accept_threshold, strategy=body.strategy)
    selection = body.model_dump(include={"dataset", "items", "include_reviewed"},
                                exclude_none=True)
    dataset_id = None
    if body.dataset:
        dataset = datasets.get_dataset(session, principal.project_id, body.dataset)
        status, _ = upload_status(dataset)
        if status != "complete":
            raise Conflict(f"dataset {body.dataset!r} is {status}, not complete: "
                           + ("wait for its upload to finish" if status == "uploading"
                              else "upload the file again and use the new dataset"))
        dataset_id = dataset.id
    selected = _selected_ids(session, principal.project_id, schema.id, dataset_id, body)
    job = Job(external_id="job_" + secrets.token_hex(8), project_id=principal.project_id,
              schema_id=schema.id, schema_version=version.version,
              params={**{k: v for k, v in vars(params).items() if k != "multi_label"},
                      **({"requested_target_precision": body.target_precision}
                         if body.target_precision is not None else {})},
              selection=selection, state="queued")
    session.add(job)
    session.flush()
    size = runtime.settings.jobs.chunk_size
    total = 0
    rows: list[dict] = []
    for seq, ids in enumerate(_batches(selected, size)):
        rows.append({"job_id": job.id, "seq": seq, "item_ids": ids, "state": "pending",
                     "attempts": 0})
        total += len(ids)
        if len(rows) >= 500:
            repository.add_chunks(session, rows)
            rows = []
    if rows:
        repository.add_chunks(session, rows)
    if total == 0:
        raise InvalidInput("the selection matches no items (reviewed items are left out unless "
                           "include_reviewed is true)")
    job.total = total
    session.flush()
    return job


def _selected_ids(session: Session, project_id: int, schema_id: int, dataset_id: int | None,
                  body: JobIn) -> Iterator[int]:
    chosen = body.items
    filters: dict[str, Any] = {
        "dataset_id": dataset_id, "statuses": chosen.status if chosen else None,
        "unlabelled": bool(chosen and chosen.unlabelled), "include_reviewed": body.include_reviewed}
    if chosen is None or chosen.ids is None:
        yield from repository.stream_ids(
            session, repository.selection_query(project_id, schema_id, **filters))
        return
    # Up to 100,000 ids: resolve them, then filter in slices a bound-parameter list can hold.
    stored = items.stored_by_external_id(session, project_id, list(dict.fromkeys(chosen.ids)))
    pks = sorted(pk for pk, _ in stored.values())
    for start in range(0, len(pks), 900):
        yield from repository.stream_ids(session, repository.selection_query(
            project_id, schema_id, among=pks[start:start + 900], **filters))


def _batches(ids: Iterator[int], size: int) -> Iterator[list[int]]:
    batch: list[int] = []
    for item_id in ids:
        batch.append(item_id)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def chunk_ids(session: Session, job: Job) -> list[int]:
    return repository.chunk_ids(session, job.id)


def cancel_job(session: Session, job: Job) -> Job:
    if job.state not in FINAL_STATES:
        job.state = "cancelled"
        job.finished_at = utcnow()
        session.flush()
        log_job("cancelled", job)
    return job


@dataclass(frozen=True)
class ChunkOutcome:
    chunk_id: int
    job_id: int
    written: int
    error: str | None = None
    retry_in: float | None = None
    """Seconds until the chunk may be tried again, after a failure."""


def backoff_seconds(attempt: int) -> float:
    return float(min(300, 2 ** min(attempt, 9)))


def run_chunk(factory: sessionmaker[Session], runtime: Runtime, worker: str,
              chunk_id: int | None = None) -> ChunkOutcome | None:
    """Claim a chunk (that one, or any claimable) and label it. None: nothing to claim."""
    lease = runtime.settings.jobs.lease_seconds
    with factory() as session:
        chunk = repository.claim_chunk(session, worker, lease, chunk_id)
        session.commit()
        if chunk is None:
            return None
        claimed_id, job_id, attempt = chunk.id, chunk.job_id, chunk.attempts
    try:
        with _lease_heartbeat(factory, claimed_id, worker, lease):
            items_cutoff.fix_cutoff(factory, runtime, job_id)  # once per job, before labelling
            written = _label_chunk(factory, runtime, claimed_id, worker)
    except Exception as exc:  # any failure: record it, back off, let the chunk be tried again
        give_up = attempt >= MAX_ATTEMPTS
        delay = backoff_seconds(attempt)
        error = f"{type(exc).__name__}: {exc}"
        log.warning("chunk %s of job %s failed (attempt %s): %s", claimed_id, job_id, attempt,
                    error)
        with factory() as session:
            repository.release_after_failure(session, claimed_id, worker, error, delay, give_up)
            failed = give_up and repository.fail_job(
                session, job_id, f"a chunk failed {attempt} times: {error}")
            session.commit()
            if failed:
                _log_job_by_id(session, "failed", job_id)
        return ChunkOutcome(claimed_id, job_id, 0, error, None if give_up else delay)
    with factory() as session:
        finished = repository.finish_job_if_complete(session, job_id)
        session.commit()
        if finished:
            _log_job_by_id(session, "finished", job_id)
    return ChunkOutcome(claimed_id, job_id, written)


def _log_job_by_id(session: Session, event: str, job_id: int) -> None:
    job = session.get(Job, job_id)
    if job is not None:
        log_job(event, job)


def _label_chunk(factory: sessionmaker[Session], runtime: Runtime, chunk_id: int,
                 worker: str) -> int:
    """Label the chunk in slices, each committed with its share of the job's counters, so
    `done` moves every few seconds. A slice is written only while this worker holds the lease,
    and a chunk run again skips the items its job labelled already."""
    lease = runtime.settings.jobs.lease_seconds
    with factory() as session:
        chunk = session.get(JobChunk, chunk_id)
        assert chunk is not None
        job = session.get(Job, chunk.job_id)
        assert job is not None
        if job.state in FINAL_STATES:  # cancelled while queued: leave the chunk be
            repository.complete_chunk(session, chunk_id, worker)
            session.commit()
            return 0
        if repository.mark_running(session, job.id):
            session.commit()
            session.refresh(job)
            log_job("started", job)
        schema = session.get(LabelSchema, job.schema_id)
        assert schema is not None
        version = schemas.get_version(session, schema, job.schema_version)
        labelled = repository.annotated_item_ids(session, job.id, chunk.item_ids)
        todo = [item_id for item_id in chunk.item_ids if item_id not in labelled]
        todo_items = items.items_by_ids(session, todo)
        params = ClassifyParams(**{k: v for k, v in job.params.items()
                                   if k in ClassifyParams.__dataclass_fields__},
                                multi_label=version.multi_label)
        job_id = job.id
        session.commit()  # end the read transaction before the long part
        sizer = SliceSizer(runtime.settings.jobs.progress_seconds)
        written = start = 0
        while True:
            if repository.job_state(session, job_id) in FINAL_STATES:
                todo_items = todo_items[:start]  # cancelled: stop here, leave the rest undone
            batch = todo_items[start:start + sizer.size]
            started = time.perf_counter()
            decisions = labelling.classify(session, runtime, schema, version,
                                           [item.text for item in batch],
                                           params) if batch else []
            session.commit()
            kept = labelling.record_decisions(session, schema, version, batch, decisions,
                                              job_id=job_id)
            start += len(batch)
            last = start >= len(todo_items)
            held = (repository.complete_chunk(session, chunk_id, worker) if last
                    else repository.renew_lease(session, chunk_id, worker, lease))
            if not held:
                # Our lease ran out and another worker owns the chunk now: keep nothing more.
                session.rollback()
                return written
            repository.add_progress(
                session, job_id, done=len(kept),
                accepted=sum(d.status == "accepted" for d in kept),
                needs_review=sum(d.status == "needs_review" for d in kept),
                no_match=sum(d.status == "no_match" for d in kept),
                judge_calls=sum(d.judge_calls for d in kept))
            session.commit()
            written += len(kept)
            if last:
                return written
            sizer.record(len(batch), time.perf_counter() - started)


class SliceSizer:
    """Items per commit, so that a commit comes about every `seconds`: the size follows the
    measured speed, starting at one item (the first answer comes fast even with a slow judge)
    and growing at most 4x a step (a warm-up slice does not mislead it)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.size = 1

    def record(self, items: int, elapsed: float) -> None:
        ideal = int(items * self.seconds / max(elapsed, 1e-3))
        self.size = max(1, min(ideal, self.size * 4))


def log_job(event: str, job: Job) -> None:
    """One structured line per job start, finish, failure and cancel."""
    speed = progress(job)
    fields = {"event": f"job.{event}", "job": job.external_id, "project_id": job.project_id,
              "state": job.state, "total": job.total, "done": job.done,
              "accepted": job.n_accepted, "needs_review": job.n_needs_review,
              "no_match": job.n_no_match}
    if job.started_at is not None and job.finished_at is not None:
        fields["seconds"] = round((job.finished_at - job.started_at).total_seconds(), 3)
    if speed.items_per_second is not None and event != "started":
        fields["items_per_second"] = round(speed.items_per_second, 3)
    if job.error:
        fields["error"] = job.error
    log.log(logging.WARNING if event == "failed" else logging.INFO, "job %s %s: %d/%d items",
            job.external_id, event, job.done, job.total, extra={"fields": fields})


@contextmanager
def _lease_heartbeat(factory: sessionmaker[Session], chunk_id: int, worker: str,
                     lease_seconds: int) -> Iterator[None]:
    """Renew the chunk's lease while it is worked on, so only a dead worker loses it."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(max(1.0, lease_seconds / 3)):
            try:
                with factory() as session:
                    repository.renew_lease(session, chunk_id, worker, lease_seconds)
                    session.commit()
            except Exception as exc:  # a missed beat is survivable; the next one may work
                log.warning("could not renew the lease of chunk %s: %s", chunk_id, exc)

    thread = threading.Thread(target=beat, name=f"lease-{chunk_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@dataclass(frozen=True)
class Progress:
    items_per_second: float | None
    eta_seconds: float | None
    judge_calls_per_item: float | None


def progress(job: Job, now: datetime | None = None) -> Progress:
    now = now or utcnow()
    per_item = job.judge_calls / job.done if job.done else None
    if job.started_at is None or job.done == 0:
        return Progress(None, None, per_item)
    end = job.finished_at or now
    elapsed = max((end - job.started_at).total_seconds(), 1e-6)
    rate = job.done / elapsed
    eta = None if job.state in FINAL_STATES else (job.total - job.done) / rate
    return Progress(rate, eta, per_item)
