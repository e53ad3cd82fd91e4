"""Jobs on separate worker processes: a worker killed mid-chunk, two Celery workers on Redis and
PostgreSQL, and an LLM server that goes away mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import distinct, func, select

from app.config import Settings
from app.jobs.models import Job, JobChunk
from app.main import create_app
from tests.helpers import SCHEMAS_DIR, bearer, job_annotation_counts, new_key, wait_for
from tests.rac.llama_server import LlamaServer

pytestmark = pytest.mark.slow

REDIS_URL = os.environ.get("RAC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "app.cli", "worker"],
                            env={**os.environ, **env}, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)


def post_items_and_schema(client: TestClient, headers: dict[str, str], n: int) -> None:
    r = client.post("/v1/schemas", content=(SCHEMAS_DIR / "demo.yaml").read_bytes(),
                    headers={**headers, "Content-Type": "application/yaml"})
    assert r.status_code == 201
    texts = ["I was charged twice", "the app crashes", "please add dark mode",
             "I forgot my password", "cancel my plan"]
    items = [{"id": f"it-{i}", "text": f"{texts[i % 5]} number {i}"} for i in range(n)]
    assert client.post("/v1/items", json={"items": items}, headers=headers).status_code == 201


def job_state(factory, external_id: str) -> Job:  # type: ignore[no-untyped-def]
    with factory() as session:
        return session.scalars(select(Job).where(Job.external_id == external_id)).one()


def running_chunk_of(factory, pid: int) -> int | None:  # type: ignore[no-untyped-def]
    with factory() as session:
        return session.scalar(select(JobChunk.id).where(
            JobChunk.state == "running", JobChunk.worker.contains(f":{pid}:")))


def held_by_other_than(factory, chunk_id: int, pid: int) -> bool:  # type: ignore[no-untyped-def]
    with factory() as session:
        chunk = session.get(JobChunk, chunk_id)
        return chunk is not None and f":{pid}:" not in (chunk.worker or "")


@contextmanager
def celery_queue(settings: Settings, env: dict[str, str]) -> Iterator[None]:
    """A Celery queue of this test's own on the real Redis, for the workers it starts (`env`) and
    for the API process that sends them tasks (`settings` and the process environment)."""
    queue = f"rac-test-{uuid.uuid4().hex[:8]}"
    settings.queue = "celery"
    settings.jobs.broker_url = REDIS_URL
    settings.jobs.celery_queue = queue
    env.update({"RAC_QUEUE": "celery", "RAC_JOBS__BROKER_URL": REDIS_URL,
                "RAC_JOBS__CELERY_QUEUE": queue})
    # celery_app() reads the process settings: point them at the same queue.
    os.environ.update({"RAC_JOBS__BROKER_URL": REDIS_URL, "RAC_JOBS__CELERY_QUEUE": queue})
    from app.config import get_settings
    from app.jobs.celery_app import celery_app

    get_settings.cache_clear()
    celery_app.cache_clear()
    try:
        yield
    finally:
        for name in ("RAC_JOBS__BROKER_URL", "RAC_JOBS__CELERY_QUEUE"):
            os.environ.pop(name, None)
        get_settings.cache_clear()
        celery_app.cache_clear()
        redis.Redis.from_url(REDIS_URL).delete(queue)


@pytest.mark.parametrize("queue", ["inprocess", "celery"])
def test_worker_killed_mid_chunk_loses_and_duplicates_nothing(settings, session_factory, db,
                                                             tmp_path, queue):
    """SIGKILL a worker inside a chunk and start it again: the new process takes back the chunk
    its dead incarnation held at once (the lease is never waited out), and the job
    finishes with every item labelled exactly once. With Celery the restarted worker also
    queues the chunk again: its old message stays unacknowledged in Redis for an hour."""
    settings.jobs.inprocess_worker = False  # only the worker processes below run the job
    env = {"RAC_DATABASE_URL": db.url, "RAC_DATA_DIR": str(settings.data_dir),
           "RAC_JOBS__LEASE_SECONDS": "3600", "RAC_QUEUE": "inprocess"}
    with ExitStack() as stack:
        if queue == "celery":
            stack.enter_context(celery_queue(settings, env))
        run_killed_worker_job(settings, session_factory, env, tmp_path)


def run_killed_worker_job(settings, session_factory, env, tmp_path):  # type: ignore[no-untyped-def]
    with TestClient(create_app(settings)) as client:
        headers = bearer(new_key(session_factory, "acme", "admin"))
        post_items_and_schema(client, headers, 200)
        settings.jobs.chunk_size = 40
        job = client.post("/v1/jobs", json={"schema": "support-demo", "items": {},
                                            "strategy": "retrieval"}, headers=headers).json()
        assert job["total"] == 200
    log = tmp_path / "workers.log"
    first = start_worker(env, log)
    second = None
    try:
        # A worker process takes ~10 s to start on an idle machine, ~100 s at load 20.
        wait_for(lambda: job_state(session_factory, job["id"]).done >= 40, 400,
                 what="the first worker to label a chunk")
        # Freeze the worker until it is caught inside a chunk, then kill it there.
        for _ in range(200):
            first.send_signal(signal.SIGSTOP)
            held = running_chunk_of(session_factory, first.pid)
            if held is not None:
                break
            first.send_signal(signal.SIGCONT)
            time.sleep(0.02)
        assert held is not None, "never caught the worker inside a chunk"
        first.kill()
        first.wait(timeout=30)
        killed_at = job_state(session_factory, job["id"])
        assert killed_at.state == "running" and killed_at.done < 200
        restarted = time.monotonic()
        second = start_worker(env, log)
        # Before, the killed chunk stayed leased to the dead process for the whole lease (an hour
        # here); now the new process takes it back as it starts (~10 s on an idle machine; a
        # worker took over 3 minutes just to start at load 30).
        wait_for(lambda: held_by_other_than(session_factory, held, first.pid), 1200,
                 what="the killed chunk to be taken back")
        print(f"the killed chunk was taken back {time.monotonic() - restarted:.1f} s after the "
              "restart")
        done = wait_for(lambda: (j := job_state(session_factory, job["id"])).state
                        in {"succeeded", "failed"} and j, 1200, what="the job to finish")
        assert done.state == "succeeded", log.read_text()[-3000:]
        assert done.done == 200
        assert job_annotation_counts(session_factory, job["id"]) == (200, 200, 200)
        with session_factory() as session:
            retried = session.scalars(select(JobChunk).where(JobChunk.id == held)).one()
        assert retried.state == "done" and retried.attempts == 2  # the killed chunk ran again
        assert f":{second.pid}:" in (retried.worker or "")
        assert "reclaimed 1 chunk(s) a dead incarnation of this worker held" in log.read_text()
    finally:
        stop(first)
        if second is not None:
            stop(second)


def test_a_live_worker_of_the_same_host_keeps_its_chunks(session_factory, db):
    """Only dead incarnations are reclaimed: a chunk held by a live process of this host, or by
    another host, stays leased."""
    from app import process_identity as identity
    from app.jobs.service import reclaim_dead_incarnations

    me = identity.default_identity()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    holders = {
        "live-other-process": f"{me}:{os.getppid()}:1:aaaa0000",
        "dead-process": f"{me}:{dead.pid}:1:bbbb0000",
        "own-pid-older-incarnation": f"{me}:{os.getpid()}:1:cccc0000",
        "this-incarnation": identity.worker_name(),
        "other-host": f"{me}-elsewhere:{dead.pid}:1:dddd0000",
        "old-style-name": f"{me}:{dead.pid}:1",
    }
    from app.auth.service import get_or_create_project
    from app.label_schemas.format import validate_schema_document
    from app.label_schemas.service import push_schema
    from tests.helpers import demo_schema

    with session_factory() as session:
        project = get_or_create_project(session, "acme")
        pushed = push_schema(session, project.id, validate_schema_document(demo_schema()))
        job = Job(external_id="job_reclaim", project_id=project.id, schema_id=pushed.schema.id,
                  schema_version=1, params={}, selection={}, state="running")
        session.add(job)
        session.flush()
        for seq, worker in enumerate(holders.values()):
            session.add(JobChunk(job_id=job.id, seq=seq, item_ids=[], state="running",
                                 attempts=1, worker=worker))
        session.commit()
    assert len(reclaim_dead_incarnations(session_factory, None)) == 2
    with session_factory() as session:
        states = {c.worker or "": c.state for c in session.scalars(select(JobChunk))}
    assert states.pop("") == "pending"  # two released chunks, both without a worker now
    assert set(states) == set(holders.values()) - {holders["dead-process"],
                                                   holders["own-pid-older-incarnation"]}
    assert set(states.values()) == {"running"}


def test_two_celery_workers_share_a_job(settings, session_factory, db, tmp_path):
    if db.backend != "postgresql":
        pytest.skip("Celery workers on several machines share a PostgreSQL database")
    settings.jobs.chunk_size = 20
    env = {"RAC_DATABASE_URL": db.url, "RAC_DATA_DIR": str(settings.data_dir)}
    log = tmp_path / "celery.log"
    with celery_queue(settings, env):
        workers = [start_worker(env, log), start_worker(env, log)]
        try:
            with TestClient(create_app(settings)) as client:
                headers = bearer(new_key(session_factory, "acme", "admin"))
                post_items_and_schema(client, headers, 400)
                job = client.post("/v1/jobs", json={"schema": "support-demo", "items": {},
                                                    "strategy": "retrieval"}, headers=headers)
                assert job.status_code == 202, job.text
                job_id = job.json()["id"]
                done = wait_for(lambda: (j := job_state(session_factory, job_id)).state
                                in {"succeeded", "failed"} and j, 300, what="the job to finish")
            assert done.state == "succeeded", log.read_text()[-3000:]
            assert job_annotation_counts(session_factory, job_id) == (400, 400, 400)
            with session_factory() as session:
                workers_used = session.scalar(select(func.count(distinct(JobChunk.worker)))
                                              .where(JobChunk.job_id == done.id))
            assert workers_used == 2, "both Celery workers should have labelled chunks"
        finally:
            for worker in workers:
                stop(worker)


def test_llm_server_down_mid_job_the_job_waits_and_finishes(settings, session_factory, db):
    if db.backend != "sqlite":
        pytest.skip("one database is enough: this is about the LLM server")
    with LlamaServer() as server:
        server.start()
        llm = Settings(database_url=db.url, data_dir=settings.data_dir, db_auto_upgrade=True,
                       llm={"backend": "openai", "base_url": server.base_url,
                            "max_retries": 4, "timeout_seconds": 20},
                       jobs={"chunk_size": 4, "lease_seconds": 30})
        with TestClient(create_app(llm)) as client:
            headers = bearer(new_key(session_factory, "acme", "admin"))
            post_items_and_schema(client, headers, 24)
            # sequential: every item asks the judge (the default cascade may ask none)
            job = client.post("/v1/jobs", json={"schema": "support-demo", "items": {},
                                                "top_k": 1, "accept_threshold": 0,
                                                "strategy": "sequential"},
                              headers=headers).json()
            wait_for(lambda: job_state(session_factory, job["id"]).done >= 4, 120,
                     what="the first chunk")
            server.stop(kill=True)
            time.sleep(12)  # longer than the judge's own retries: chunks fail and back off
            during = job_state(session_factory, job["id"])
            assert during.state == "running" and during.done < 24
            server.restart()
            done = wait_for(lambda: (j := job_state(session_factory, job["id"])).state
                            in {"succeeded", "failed"} and j, 300, what="the job to finish")
        assert done.state == "succeeded", done.error
        assert job_annotation_counts(session_factory, job["id"]) == (24, 24, 24)
        assert done.judge_calls == 24  # top_k 1: one question per item, none lost or repeated
