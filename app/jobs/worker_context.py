"""The database and engine objects of a worker process, built once on first use."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker

from app.config import get_settings
from app.db import make_engine, make_session_factory, upgrade_database
from app.logs import configure_logging
from app.runtime import Runtime


@lru_cache
def worker_context() -> tuple[sessionmaker[Session], Runtime]:
    settings = get_settings()
    configure_logging(settings.log_format)
    engine = make_engine(settings.resolved_database_url)
    if settings.auto_upgrade:  # the embedded SQLite database may be new
        upgrade_database(engine)
    return make_session_factory(engine), Runtime.from_settings(settings)
