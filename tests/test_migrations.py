"""The ORM models and the migrations agree, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import app.models  # noqa: F401
from app.db import Base, current_revision, head_revision


def test_migrations_reach_head(db):
    assert current_revision(db.engine) == head_revision()


def test_no_pending_autogenerate_diff(db):
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
