"""Batch jobs on Celery workers (RAC_QUEUE=celery), with Redis as the broker.

One task per chunk. Tasks are acknowledged late and given back if their worker dies, and the
chunk lease in the database makes a task that arrives twice harmless. The database, not the
broker, is the record of what is done.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from celery import Celery
from celery.signals import worker_ready

from app.config import get_settings

log = logging.getLogger(__name__)

CHUNK_TASK = "rac.process_chunk"


@lru_cache
def celery_app() -> Celery:
    settings = get_settings()
    app = Celery("rac", broker=settings.jobs.broker_url)
    app.conf.update(
        task_acks_late=True,  # a chunk's message is acknowledged only once the chunk is stored
        task_reject_on_worker_lost=True,  # a killed worker gives its message back
        worker_prefetch_multiplier=1,  # chunks are long: do not hoard them
        task_default_queue=settings.jobs.celery_queue,
        broker_connection_retry_on_startup=True,
        # Redis redelivers an unacknowledged message after this long: longer than any chunk.
        broker_transport_options={"visibility_timeout": max(3600, 4 * settings.jobs.lease_seconds)},
        task_ignore_result=True,
    )
    app.task(name=CHUNK_TASK, bind=True, max_retries=None)(_process_chunk)
    return app


def _process_chunk(task, chunk_id: int) -> None:  # type: ignore[no-untyped-def]
    from app.jobs.service import run_chunk
    from app.jobs.worker_context import worker_context
    from app.process_identity import worker_name

    factory, runtime = worker_context()
    worker = worker_name(runtime.settings.jobs.worker_id)
    outcome = run_chunk(factory, runtime, worker, chunk_id)
    if outcome is not None and outcome.retry_in is not None:
        raise task.retry(countdown=outcome.retry_in)


@worker_ready.connect
def _reclaim_on_start(**_: object) -> None:
    """A restarted worker takes back at once the chunks its dead incarnation held (a SIGKILL or
    a crash left them leased) and queues them again: their old messages stay unacknowledged in
    Redis until the visibility timeout (an hour), and their leases would block them for
    `lease_seconds` (600 s by default) even if the API's orphan sweeper ran."""
    from app.jobs.service import reclaim_dead_incarnations
    from app.jobs.worker_context import worker_context

    factory, runtime = worker_context()
    try:
        released = reclaim_dead_incarnations(factory, runtime.settings.jobs.worker_id)
    except Exception:  # the database may be away; the leases still run out in time
        log.exception("could not reclaim the chunks of a dead incarnation")
        return
    if released:
        enqueue_chunks(released)


def enqueue_chunks(chunk_ids: list[int]) -> None:
    app = celery_app()
    for chunk_id in chunk_ids:
        app.send_task(CHUNK_TASK, args=[chunk_id])
