"""Issuing and checking API keys. Keys are shown once and stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.auth import repository
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
    project = repository.project_named(session, name)
    if project is None:
        raise NotFound(f"no project named {name!r}")
    return project


def get_or_create_project(session: Session, name: str) -> Project:
    project = repository.project_named(session, name)
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
    found = repository.key_with_project(session, hash_key(key))
    if found is None or found[0].revoked_at is not None:
        raise Unauthorized("the API key is unknown or revoked")
    return principal_of(*found)


def principal_of(api_key: ApiKey, project: Project) -> Principal:
    return Principal(api_key.id, api_key.name, project.id, project.name, api_key.role)


def key_is_live(session: Session, key_id: int) -> bool:
    """The key exists and is not revoked (long requests, e.g. event streams, ask again)."""
    return repository.key_is_live(session, key_id)


def list_keys(session: Session, project_id: int) -> list[ApiKey]:
    return repository.keys_of_project(session, project_id)


def revoke_key(session: Session, project_id: int, prefix: str) -> ApiKey:
    key = repository.key_by_prefix(session, project_id, prefix)
    if key is None:
        raise NotFound(f"no key with prefix {prefix!r} in this project")
    key.revoked_at = utcnow()
    return key
