"""What the commands that work on the service's database share. Every command reads the same
RAC_* settings as the server, so a command run beside a server works on the server's database."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from app.auth.service import get_project
from app.config import get_settings
from app.label_schemas.models import LabelSchema
from app.label_schemas.repository import get_schema


def session_factory() -> sessionmaker[Session]:
    from app.db import make_engine, make_session_factory, upgrade_database

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    if settings.auto_upgrade:
        upgrade_database(engine)
    return make_session_factory(engine)


def schema_of(session: Session, project: str, name: str) -> LabelSchema:
    """Schema NAME of the project named PROJECT (NotFound names whichever is missing)."""
    return get_schema(session, get_project(session, project).id, name)


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
