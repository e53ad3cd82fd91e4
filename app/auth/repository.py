"""Queries for projects and API keys. Keys are looked up by the hash of their secret only."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import ApiKey, Project


def project_named(session: Session, name: str) -> Project | None:
    return session.scalar(select(Project).where(Project.name == name))


def key_with_project(session: Session, key_hash: str,
                     key_id: int | None = None) -> tuple[ApiKey, Project] | None:
    """The key with this hash (and id, when given) and its project, revoked or not."""
    query = (select(ApiKey, Project).join(Project, Project.id == ApiKey.project_id)
             .where(ApiKey.key_hash == key_hash))
    if key_id is not None:
        query = query.where(ApiKey.id == key_id)
    row = session.execute(query).first()
    return (row.ApiKey, row.Project) if row is not None else None


def key_is_live(session: Session, key_id: int) -> bool:
    """The key exists and is not revoked."""
    return session.scalar(select(ApiKey.id).where(ApiKey.id == key_id,
                                                  ApiKey.revoked_at.is_(None))) is not None


def keys_of_project(session: Session, project_id: int) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.project_id == project_id)
                                .order_by(ApiKey.id)))


def key_by_prefix(session: Session, project_id: int, prefix: str) -> ApiKey | None:
    return session.scalar(
        select(ApiKey).where(ApiKey.project_id == project_id, ApiKey.prefix == prefix))
