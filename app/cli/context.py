"""What the commands that work on the service's database share. Every command reads the same
RAC_* settings as the server, so a command run beside a server works on the server's database.

Each says which database it uses (on standard error) and refuses to start a new, empty one
unless asked (`--init`): run from the wrong directory, or without the server's RAC_DATA_DIR, a
command would otherwise create a fresh `./var/rac.db` and write a key the server never sees.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.auth.service import get_project
from app.cli.group import CommandFailed
from app.config import get_settings
from app.label_schemas.models import LabelSchema
from app.label_schemas.repository import get_schema

F = TypeVar("F", bound=Callable[..., Any])


def init_option(command: F) -> F:
    """--init: create (and migrate) the database when there is none yet."""
    return click.option(
        "--init", "init", is_flag=True,
        help="create the database if it does not exist yet (without it, a missing database "
             "is an error: set RAC_DATA_DIR or RAC_DATABASE_URL to the server's)")(command)


def _where_to_look() -> str:
    return (f"the current directory is {Path.cwd()}; set RAC_DATA_DIR (or RAC_DATABASE_URL) to "
            "the server's, run the command where the server runs, or pass --init to create a "
            "new database")


def session_factory(init: bool = False) -> sessionmaker[Session]:
    from app.db import make_engine, make_session_factory, upgrade_database

    settings = get_settings()
    url = settings.resolved_database_url
    parsed = make_url(url)
    click.echo(f"database: {parsed.render_as_string(hide_password=True)}", err=True)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and not init and parsed.database not in (None, "", ":memory:") \
            and not Path(parsed.database).exists():
        raise CommandFailed(f"no database at {parsed.database}: {_where_to_look()}")
    engine = make_engine(url)
    try:
        migrated = inspect(engine).has_table("alembic_version")
    except SQLAlchemyError as exc:
        raise CommandFailed(f"cannot open the database: {exc.__class__.__name__}: "
                            f"{str(exc).splitlines()[0]}") from None
    if not migrated and not init:
        raise CommandFailed(f"the database has no RAC tables yet: {_where_to_look()}")
    if init or settings.auto_upgrade:
        upgrade_database(engine)
    return make_session_factory(engine)


def schema_of(session: Session, project: str, name: str) -> LabelSchema:
    """Schema NAME of the project named PROJECT (NotFound names whichever is missing)."""
    return get_schema(session, get_project(session, project).id, name)


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
