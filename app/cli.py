"""The `rac` command. Every subcommand reads the same RAC_* settings as the server, so a command
run beside a server works on the server's database."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from app.config import get_settings


def _session_factory():  # type: ignore[no-untyped-def]
    from app.db import make_engine, make_session_factory, upgrade_database

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    if settings.auto_upgrade:
        upgrade_database(engine)
    return make_session_factory(engine)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.group()
def main() -> None:
    """RAC Labeller: label text with open-source LLMs (Retrieval Augmented Classification)."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int,
              help="uvicorn worker processes (each loads the models)")
def serve(host: str, port: int, workers: int) -> None:
    """Start the API server."""
    import uvicorn

    uvicorn.run("app.main:create_app", factory=True, host=host, port=port, workers=workers)


@main.command()
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


@main.group()
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


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--project", required=True, help="project name (created if new)")
@click.option("--role", required=True, type=click.Choice(["admin", "editor", "reviewer", "viewer"]))
@click.option("--name", default=None, help="a name to recognise the key by")
def keys_create(project: str, role: str, name: str | None) -> None:
    """Create an API key; the key is printed once, as the last line."""
    from app.auth.models import Role
    from app.auth.service import create_key
    from app.db import session_scope

    with session_scope(_session_factory()) as session:
        stored, key = create_key(session, project, Role(role), name)
        click.echo(f"created {stored.role.value} key {stored.prefix!r} for project {project!r}; "
                   "it is shown only now:", err=True)
    click.echo(key)


@main.group()
def schemas() -> None:
    """Label schemas."""


@schemas.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--project", required=True, help="project name (created if new)")
def schemas_push(file: Path, project: str) -> None:
    """Validate FILE (YAML or JSON) and store it as the schema's next version."""
    from app.auth.service import get_or_create_project
    from app.db import session_scope
    from app.errors import AppError
    from app.label_schemas.format import parse_document, validate_schema_document
    from app.label_schemas.service import push_schema

    media = "application/json" if file.suffix.lower() == ".json" else "application/yaml"
    try:
        doc = validate_schema_document(parse_document(file.read_bytes(), media))
        with session_scope(_session_factory()) as session:
            proj = get_or_create_project(session, project)
            result = push_schema(session, proj.id, doc)
            state = "stored as new" if result.created else "unchanged, still"
            click.echo(f"{doc.name}: {state} version {result.version.version} "
                       f"({result.version.label_count} labels)")
    except AppError as exc:
        _fail(exc.detail)


@schemas.command("calibrate")
@click.argument("name")
@click.option("--project", required=True)
def schemas_calibrate(name: str, project: str) -> None:
    """Fit a new calibrator for schema NAME from all its reviews, and print how it does."""
    from app.calibration.service import refit
    from app.db import session_scope
    from app.errors import AppError
    from app.label_schemas.repository import get_schema

    try:
        with session_scope(_session_factory()) as session:
            schema = get_schema(session, _project_id(session, project), name)
            row = refit(session, schema)
            fitted = "fitted" if row.params.get("weights") else "not fitted (too few reviews)"
            click.echo(f"{name}: calibrator version {row.version} {fitted} on {row.n_reviews} "
                       f"reviewed decisions; ECE before {_fmt(row.ece_before)}, "
                       f"after {_fmt(row.ece_after)}")
    except AppError as exc:
        _fail(exc.detail)


@schemas.command("cutoff")
@click.argument("name")
@click.option("--project", required=True)
@click.option("--precision", required=True, type=click.FloatRange(0.5, 0.999))
def schemas_cutoff(name: str, project: str, precision: float) -> None:
    """The cutoff that reaches PRECISION on schema NAME's reviews, and its expected coverage."""
    from app.calibration.service import cutoff_for
    from app.db import session_scope
    from app.errors import AppError
    from app.label_schemas.repository import get_schema

    try:
        with session_scope(_session_factory()) as session:
            answer = cutoff_for(session, get_schema(session, _project_id(session, project), name),
                                precision)
    except AppError as exc:
        _fail(exc.detail)
    c = answer.choice
    if c.cutoff is None:
        click.echo(f"cannot promise precision {precision}: {c.reason}")
        sys.exit(1)
    low, high = c.interval or (0.0, 1.0)
    click.echo(f"cutoff {c.cutoff:.3f}: precision {c.precision:.3f} (95% interval {low:.3f}-"
               f"{high:.3f}, {c.support} reviewed decisions), expected coverage "
               f"{_fmt(answer.expected_coverage)}")


def _project_id(session, name: str) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from app.auth.models import Project
    from app.errors import NotFound

    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise NotFound(f"no project named {name!r}")
    return project.id


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@schemas.command("json-schema")
def schemas_json_schema() -> None:
    """Print the JSON Schema of the label-schema format."""
    from app.label_schemas.format import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


from app.rac.eval_cli import eval_command  # noqa: E402 - registered last, kept apart

main.add_command(eval_command)

from app.label_cli import label_command  # noqa: E402 - registered last, kept apart

main.add_command(label_command)


@main.group()
def judge() -> None:
    """Judges trained on a schema's labels (reviewed items, a CSV, or the schema's examples)."""


@judge.command("train")
@click.option("--project", required=True)
@click.option("--schema", "schema_name", required=True, help="label schema name")
@click.option("--from-reviews", is_flag=True,
              help="train on the schema's reviewed items (plus its own examples)")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="a CSV of labelled texts to train on (plus the examples)")
@click.option("--text-col", default="text", show_default=True)
@click.option("--label-col", default="label", show_default=True)
@click.option("--examples-per-label", type=click.IntRange(1), default=None,
              help="at most this many reviewed items / rows per label [default: all]")
@click.option("--epochs", type=click.IntRange(1, 20), default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--train-layers", type=click.IntRange(1, 64), default=4, show_default=True,
              help="top decoder layers that learn")
@click.option("--activate", is_flag=True, help="make the new judge the schema's active judge")
def judge_train(project: str, schema_name: str, from_reviews: bool, data: Path | None,
                text_col: str, label_col: str, examples_per_label: int | None, epochs: int,
                seed: int, train_layers: int, activate: bool) -> None:
    """Fine-tune the bundled judge on a schema's labels (on the CPU; minutes). Without
    --from-reviews or --data it learns from the schema's own examples only."""
    from app.db import session_scope
    from app.errors import AppError
    from app.judges import service
    from app.label_schemas.repository import get_schema, get_version
    from app.rac.eval_cli import load_rows
    from app.rac.training import LabelledText
    from app.runtime import Runtime

    rows = ([LabelledText(t, c) for t, c in load_rows(data, text_col, label_col) if c]
            if data else [])
    options = service.TrainOptions(from_reviews=from_reviews,
                                   examples_per_label=examples_per_label, epochs=epochs,
                                   seed=seed, train_layers=train_layers)
    factory = _session_factory()
    try:
        with session_scope(factory) as session:
            schema = get_schema(session, _project_id(session, project), schema_name)
            row = service.start(session, schema, get_version(session, schema), options, rows)
            judge_id, version = row.id, row.version
    except AppError as exc:
        _fail(exc.detail)
    click.echo(f"training judge version {version} of {schema_name!r} ...", err=True)
    service.run(factory, Runtime.from_settings(get_settings()), judge_id, options, rows,
                progress=True)
    with session_scope(factory) as session:
        schema = get_schema(session, _project_id(session, project), schema_name)
        row = service.get_judge(session, schema, version)
        if row.state != "ready":
            _fail(f"training failed: {row.error}")
        if activate:
            service.activate(session, schema, version)
        click.echo(f"judge version {version}: {row.data.get('pairs')} pairs, "
                   f"{row.metrics['seconds']:.0f}s; AUC on its training pairs "
                   f"{_fmt(row.metrics['train_auc_before'])} -> "
                   f"{_fmt(row.metrics['train_auc_after'])}"
                   + ("; active" if activate else f"; activate with `rac judge activate "
                                                  f"--project {project} --schema "
                                                  f"{schema_name} {version}`"))


@judge.command("list")
@click.option("--project", required=True)
@click.option("--schema", "schema_name", required=True)
def judge_list(project: str, schema_name: str) -> None:
    """The schema's trained judges with their metrics (JSON lines)."""
    from app.db import session_scope
    from app.errors import AppError
    from app.judges import service
    from app.label_schemas.repository import get_schema

    try:
        with session_scope(_session_factory()) as session:
            schema = get_schema(session, _project_id(session, project), schema_name)
            for row in service.list_judges(session, schema.id):
                click.echo(json.dumps({"version": row.version, "state": row.state,
                                       "active": row.active, "model_id": row.model_id,
                                       "data": row.data, "metrics": row.metrics,
                                       "error": row.error}))
    except AppError as exc:
        _fail(exc.detail)


@judge.command("activate")
@click.argument("version", type=int)
@click.option("--project", required=True)
@click.option("--schema", "schema_name", required=True)
def judge_activate(version: int, project: str, schema_name: str) -> None:
    """Make judge VERSION the one the engine asks for the schema's items."""
    from app.db import session_scope
    from app.errors import AppError
    from app.judges import service
    from app.label_schemas.repository import get_schema

    try:
        with session_scope(_session_factory()) as session:
            schema = get_schema(session, _project_id(session, project), schema_name)
            service.activate(session, schema, version)
            click.echo(f"{schema_name}: judge version {version} is active")
    except AppError as exc:
        _fail(exc.detail)


if __name__ == "__main__":
    main()
