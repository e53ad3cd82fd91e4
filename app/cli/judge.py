"""Judges trained on a schema's labels: train, list, activate."""

from __future__ import annotations

import json
from pathlib import Path

import click

from app.cli.context import fmt, schema_of, session_factory
from app.cli.group import CommandFailed
from app.config import get_settings


@click.group()
def judge() -> None:
    """Judges trained on a schema's labels (reviewed items, a CSV, or the schema's examples)."""


@judge.command("train")
@click.option("--project", required=True)
@click.option("--schema", "schema_name", required=True,
              help="label schema NAME (as stored in the server's database)")
@click.option("--from-reviews", is_flag=True,
              help="train on the schema's reviewed items (plus its own examples)")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="a CSV of labelled texts to train on (plus the examples)")
@click.option("--text-column", "--text-col", "text_col", default="text", show_default=True,
              help="the column of --data holding the text")
@click.option("--label-column", "--label-col", "label_col", default="label",
              show_default=True, help="the column of --data holding the label")
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
    from app.cli.files import load_rows
    from app.db import session_scope
    from app.judges import repository, service
    from app.label_schemas.repository import get_version
    from app.rac.training import LabelledText
    from app.runtime import Runtime

    rows = ([LabelledText(t, c) for t, c in load_rows(data, text_col, label_col) if c]
            if data else [])
    options = service.TrainOptions(from_reviews=from_reviews,
                                   examples_per_label=examples_per_label, epochs=epochs,
                                   seed=seed, train_layers=train_layers)
    factory = session_factory()
    with session_scope(factory) as session:
        schema = schema_of(session, project, schema_name)
        row = service.start(session, schema, get_version(session, schema), options, rows)
        judge_id, version = row.id, row.version
    click.echo(f"training judge version {version} of {schema_name!r} ...", err=True)
    service.run(factory, Runtime.from_settings(get_settings()), judge_id, options, rows,
                progress=True)
    with session_scope(factory) as session:
        schema = schema_of(session, project, schema_name)
        row = repository.get_judge(session, schema, version)
        if row.state != "ready":
            raise CommandFailed(f"training failed: {row.error}")
        if activate:
            service.activate(session, schema, version)
        click.echo(f"judge version {version}: {row.data.get('pairs')} pairs, "
                   f"{row.metrics['seconds']:.0f}s; AUC on its training pairs "
                   f"{fmt(row.metrics['train_auc_before'])} -> "
                   f"{fmt(row.metrics['train_auc_after'])}"
                   + ("; active" if activate else f"; activate with `rac judge activate "
                                                  f"--project {project} --schema "
                                                  f"{schema_name} {version}`"))


@judge.command("list")
@click.option("--project", required=True)
@click.option("--schema", "schema_name", required=True)
def judge_list(project: str, schema_name: str) -> None:
    """The schema's trained judges with their metrics (JSON lines)."""
    from app.db import session_scope
    from app.judges import repository

    with session_scope(session_factory()) as session:
        schema = schema_of(session, project, schema_name)
        for row in repository.list_judges(session, schema.id):
            click.echo(json.dumps({"version": row.version, "state": row.state,
                                   "active": row.active, "model_id": row.model_id,
                                   "data": row.data, "metrics": row.metrics,
                                   "error": row.error}))


@judge.command("activate")
@click.argument("version", type=int)
@click.option("--project", required=True)
@click.option("--schema", "schema_name", required=True)
def judge_activate(version: int, project: str, schema_name: str) -> None:
    """Make judge VERSION the one the engine asks for the schema's items."""
    from app.db import session_scope
    from app.judges import service

    with session_scope(session_factory()) as session:
        service.activate(session, schema_of(session, project, schema_name), version)
        click.echo(f"{schema_name}: judge version {version} is active")
