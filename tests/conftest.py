"""Test fixtures. Every database test runs on SQLite and on the machine's PostgreSQL.

Each backend is migrated once per session with the real migrations (PostgreSQL in a fresh schema
of database `test`, dropped at the end); after each test every table is emptied, so tests are
isolated while still using real connections, threads and processes.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.config import EngineSettings, Settings
from app.db import Base, make_engine, make_session_factory, upgrade_database
from tests.helpers import Database

POSTGRES_URL = os.environ.get("RAC_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_database(tmp_root: Path) -> Iterator[Database]:
    schema = f"rac_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade_database(engine)
    try:
        yield Database("postgresql", url, engine)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _sqlite_database(tmp_root: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_root / 'rac-test.db'}"
    engine = make_engine(url)
    upgrade_database(engine)
    try:
        yield Database("sqlite", url, engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Database]:
    root = tmp_path_factory.mktemp(f"db-{request.param}")
    make = _sqlite_database if request.param == "sqlite" else _postgres_database
    yield from make(root)


def _empty_all_tables(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


def _background_threads_left() -> list[str]:
    """An app's background threads still running: each must stop when its app's lifespan
    ends. One left behind keeps querying after the test's database is emptied or dropped (CI
    logged "scorer refit pass failed ... relation exemplars does not exist" after the run)."""
    deadline = time.monotonic() + 5  # a stop() in progress may need a moment
    while True:
        left = sorted(t.name for t in threading.enumerate()
                      if t.is_alive() and t.name in BACKGROUND_THREADS)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


BACKGROUND_THREADS = {"scorer-refit", "prior-fit"}


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    """A migrated database, empty at the start of the test; no app thread outlives the test."""
    yield database
    left = _background_threads_left()
    _empty_all_tables(database.engine)
    assert not left, f"background threads outlived their app: {left}"


@pytest.fixture
def session_factory(db: Database):  # type: ignore[no-untyped-def]
    return make_session_factory(db.engine)


@pytest.fixture
def settings(db: Database, tmp_path: Path) -> Settings:
    # The prior fitted after each push asks the judge nothing here: the bundled judge's 60
    # questions would cost every test that pushes a schema with many examples a minute.
    return Settings(database_url=db.url, data_dir=tmp_path / "data", db_auto_upgrade=True,
                    engine=EngineSettings(prior_judge_questions=0))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app(settings)) as c:
        yield c


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that drive a browser are marked `browser`, so `make test-fast` can leave them out."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
