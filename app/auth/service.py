"""Issuing and checking API keys. Keys are shown once and stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import ApiKey, Project, Role
from app.db import utcnow
from app.errors import NotFound, Unauthorized

KEY_PREFIX = "rac_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's project and role. Every query is scoped by `project_id`."""

    key_id: int
    key_name: str
    project_id: int
    project_name: str
    role: Role


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def get_project(session: Session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise NotFound(f"no project named {name!r}")
    return project


def get_or_create_project(session: Session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        project = Project(name=name)
        session.add(project)
        session.flush()
    return project


def create_key(session: Session, project_name: str, role: Role,
               name: str | None = None) -> tuple[ApiKey, str]:
    """Create a key for the project (created if new); returns it with its plaintext, shown once."""
    project = get_or_create_project(session, project_name)
    public = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{public}_{secrets.token_urlsafe(24)}"
    stored = ApiKey(
        project_id=project.id,
        name=name or f"{role.value}-{public}",
        role=role,
        key_hash=hash_key(key),
        prefix=f"{KEY_PREFIX}{public}",
    )
    session.add(stored)
    session.flush()
    return stored, key


def authenticate(session: Session, key: str) -> Principal:
    row = session.execute(
        select(ApiKey, Project)
        .join(Project, Project.id == ApiKey.project_id)
        .where(ApiKey.key_hash == hash_key(key))
    ).first()
    if row is None or row.ApiKey.revoked_at is not None:
        raise Unauthorized("the API key is unknown or revoked")
    api_key, project = row.ApiKey, row.Project
    return Principal(api_key.id, api_key.name, project.id, project.name, api_key.role)


def key_is_live(session: Session, key_id: int) -> bool:
    """The key exists and is not revoked (long requests, e.g. event streams, ask again)."""
    return session.scalar(select(ApiKey.id).where(ApiKey.id == key_id,
                                                  ApiKey.revoked_at.is_(None))) is not None


def list_keys(session: Session, project_id: int) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.project_id == project_id)
                                .order_by(ApiKey.id)))


def revoke_key(session: Session, project_id: int, prefix: str) -> ApiKey:
    key = session.scalar(
        select(ApiKey).where(ApiKey.project_id == project_id, ApiKey.prefix == prefix)
    )
    if key is None:
        raise NotFound(f"no key with prefix {prefix!r} in this project")
    key.revoked_at = utcnow()
    return key
