"""Running the service: the API server, batch-job workers and database migrations."""

from __future__ import annotations

import click

from app.config import get_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int,
              help="uvicorn worker processes (each loads the models)")
def serve(host: str, port: int, workers: int) -> None:
    """Start the API server."""
    import uvicorn

    from app.runtime import embedder_model_path, judge_model_path

    # A model named in the settings but not assembled: `error: ... run rac models assemble`,
    # here, rather than a traceback from inside the server's start-up.
    settings = get_settings()
    embedder_model_path(settings.embedder, settings.data_dir)
    if settings.llm.backend == "llama_cpp":
        judge_model_path(settings.llm, settings.data_dir)
    uvicorn.run("app.main:create_app", factory=True, host=host, port=port, workers=workers)


@click.command()
def worker() -> None:
    """Run batch jobs: a Celery worker with RAC_QUEUE=celery, else a database-polling worker
    (any number may run beside the API; chunk leases keep them apart)."""
    import logging
    import os
    import signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    if settings.queue == "celery":
        from app.jobs.celery_app import celery_app

        # solo pool: the models are loaded once, in this process, and a chunk runs here.
        celery_app().worker_main(["worker", "--loglevel=INFO", "--pool=solo",
                                  "--queues", settings.jobs.celery_queue,
                                  "--hostname", f"rac-{os.getpid()}@%h"])
        return
    from app.jobs.runner import JobRunner
    from app.jobs.worker_context import worker_context

    factory, runtime = worker_context()
    runner = JobRunner(factory, runtime)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: runner.stop(timeout=0))
    runner.run_forever()


@click.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to RAC_DATABASE_URL."""
    from app.db import current_revision, make_engine, upgrade_database

    engine = make_engine(get_settings().resolved_database_url)
    upgrade_database(engine)
    click.echo(f"database at revision {current_revision(engine)}")


@db.command("revision")
@click.option("-m", "--message", required=True)
@click.option("--autogenerate/--empty", default=True, show_default=True,
              help="diff the ORM models against the database (at head) to write the migration")
def db_revision(message: str, autogenerate: bool) -> None:
    """Write a new migration into migrations/versions (for developers)."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from app.db import alembic_config

    config = alembic_config(get_settings().resolved_database_url)
    head = ScriptDirectory.from_config(config).get_current_head()
    rev_id = f"{int(head or 0) + 1:04d}"  # sequential ids read better than random hex
    command.revision(config, message=message, autogenerate=autogenerate, rev_id=rev_id)
