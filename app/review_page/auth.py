"""Browser sessions of the review page.

Sign-in checks the API key once with the same `authenticate` as the JSON API. The session cookie
(signed by Starlette's SessionMiddleware, HttpOnly, SameSite=Lax) then holds the key's id and
hash, never the key: the cookie is signed, not encrypted, so anything in it is readable by whoever
holds it. A stolen cookie opens this page and nothing else; the key keeps working only where it
was meant to. Every request looks the key up again, so revoking it ends the session at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import ApiKey, Project, Role
from app.auth.service import Principal, authenticate, hash_key
from app.errors import Forbidden

SESSION_KEY = "review"
# Viewers may sign in to read (the dashboard, items, schemas); every page action checks the role
# it needs (reviewing: reviewer; uploads and jobs: editor; schemas: admin).
NEEDED_ROLE = Role.viewer


def sign_in(session: Session, key: str) -> tuple[Principal, dict[str, Any]]:
    """Check a key (Unauthorized if unknown or revoked, Forbidden below the reviewer role) and
    return its principal and what the session cookie keeps."""
    principal = authenticate(session, key)
    if not principal.role.allows(NEEDED_ROLE):
        raise Forbidden(f"this key has the {principal.role.value} role; the review page needs "
                        f"{NEEDED_ROLE.value} (or higher)")
    return principal, {"key_id": principal.key_id, "key_hash": hash_key(key)}


def principal_from(session: Session, stored: Any) -> Principal | None:
    """The principal of a session cookie's contents, or None if they no longer name a live key
    (revoked, deleted, or not a dict we wrote)."""
    if not isinstance(stored, dict):
        return None
    key_id, key_hash = stored.get("key_id"), stored.get("key_hash")
    if not isinstance(key_id, int) or not isinstance(key_hash, str):
        return None
    row = session.execute(
        select(ApiKey, Project).join(Project, Project.id == ApiKey.project_id)
        .where(ApiKey.id == key_id, ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    ).first()
    if row is None or not row.ApiKey.role.allows(NEEDED_ROLE):
        return None
    api_key, project = row.ApiKey, row.Project
    return Principal(api_key.id, api_key.name, project.id, project.name, api_key.role)
