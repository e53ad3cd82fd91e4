"""Administering a project from the command line: API keys and label schemas."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from app.cli.context import fmt, init_option, schema_of, session_factory


@click.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--project", required=True, help="project name (created if new)")
@click.option("--role", required=True, type=click.Choice(["admin", "editor", "reviewer", "viewer"]))
@click.option("--name", default=None, help="a name to recognise the key by")
@init_option
def keys_create(project: str, role: str, name: str | None, init: bool) -> None:
    """Create an API key in the server's database (RAC_DATA_DIR or RAC_DATABASE_URL, as the
    server reads them); the key is printed once, as the last line."""
    from app.auth.models import Role
    from app.auth.service import create_key
    from app.db import session_scope

    with session_scope(session_factory(init)) as session:
        stored, key = create_key(session, project, Role(role), name)
        click.echo(f"created {stored.role.value} key {stored.prefix!r} for project {project!r}; "
                   "it is shown only now:", err=True)
    click.echo(key)


@click.group()
def schemas() -> None:
    """Label schemas: push, calibrate and cutoff work on the server's database (a schema FILE
    is local, a schema NAME is the one stored there); list asks a running server (RAC_URL)."""


@schemas.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--project", required=True, help="project name (created if new)")
@init_option
def schemas_push(file: Path, project: str, init: bool) -> None:
    """Validate the local FILE (YAML or JSON) and store it as the schema's next version, in the
    server's database (RAC_DATA_DIR or RAC_DATABASE_URL). Through a running server instead:
    POST /v1/schemas."""
    from app.auth.service import get_or_create_project
    from app.db import session_scope
    from app.label_schemas.format import parse_document, validate_schema_document
    from app.label_schemas.service import push_schema

    media = "application/json" if file.suffix.lower() == ".json" else "application/yaml"
    doc = validate_schema_document(parse_document(file.read_bytes(), media))
    with session_scope(session_factory(init)) as session:
        proj = get_or_create_project(session, project)
        result = push_schema(session, proj.id, doc)
        state = "stored as new" if result.created else "unchanged, still"
        click.echo(f"{doc.name}: {state} version {result.version.version} "
                   f"({result.version.label_count} labels)")


@schemas.command("calibrate")
@click.argument("name")
@click.option("--project", required=True)
def schemas_calibrate(name: str, project: str) -> None:
    """Fit a new calibrator for schema NAME from all its reviews, and print how it does."""
    from app.calibration.service import refit
    from app.config import get_settings
    from app.db import session_scope
    from app.runtime import Runtime

    runtime = Runtime.from_settings(get_settings())  # the label index: reviews left out of it
    with session_scope(session_factory()) as session:
        row = refit(session, runtime, schema_of(session, project, name))
        fitted = "fitted" if row.params.get("weights") else "not fitted (too few reviews)"
        click.echo(f"{name}: calibrator version {row.version} {fitted} on {row.n_reviews} "
                   f"reviewed decisions; ECE before {fmt(row.ece_before)}, "
                   f"after {fmt(row.ece_after)}")


@schemas.command("cutoff")
@click.argument("name")
@click.option("--project", required=True)
@click.option("--precision", required=True, type=click.FloatRange(0.5, 0.999))
def schemas_cutoff(name: str, project: str, precision: float) -> None:
    """The cutoff that reaches PRECISION on schema NAME's reviews, and its expected coverage."""
    from app.calibration.service import cutoff_for
    from app.db import session_scope

    with session_scope(session_factory()) as session:
        answer = cutoff_for(session, schema_of(session, project, name), precision)
    c = answer.choice
    if c.cutoff is None:
        click.echo(f"cannot promise precision {precision}: {c.reason}")
        sys.exit(1)
    low, high = c.interval or (0.0, 1.0)
    click.echo(f"cutoff {c.cutoff:.3f}: precision {c.precision:.3f} (95% interval {low:.3f}-"
               f"{high:.3f}, {c.support} reviewed decisions), expected coverage "
               f"{fmt(answer.expected_coverage)}")


@schemas.command("json-schema")
def schemas_json_schema() -> None:
    """Print the JSON Schema of the label-schema format."""
    from app.label_schemas.format import json_schema

    click.echo(json.dumps(json_schema(), indent=2))
