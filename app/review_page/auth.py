"""Browser sessions of the review page.

Sign-in checks the API key once with the same `authenticate` as the JSON API, then stores a
session row (`PageSession`) and puts its random token in the session cookie (signed by
Starlette's SessionMiddleware, HttpOnly, SameSite=Lax), never the key: the cookie is signed, not
encrypted, so anything in it is readable by whoever holds it. A stolen cookie opens this page and
nothing else. Every request looks the session and its key up again, so signing out (the row is
deleted) or revoking the key ends the session at once, for every copy of the cookie.

The sign-in and sign-out forms carry a CSRF token kept in the same signed cookie (double
submit): another site can make a browser post the form, but cannot read the token to put in it.
The page's own API calls need a header no cross-site form can send (see `routes.PAGE_HEADER`).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.auth.models import ApiKey, Project, Role
from app.auth.service import Principal, authenticate, hash_key
from app.db import utcnow
from app.errors import Forbidden
from app.review_page.models import PageSession

SESSION_KEY = "review"
CSRF_KEY = "csrf"
# Viewers may sign in to read (the dashboard, items, schemas); every page action checks the role
# it needs (reviewing: reviewer; uploads and jobs: editor; schemas: admin).
NEEDED_ROLE = Role.viewer


def sign_in(session: Session, key: str, hours: int) -> tuple[Principal, dict[str, Any]]:
    """Check a key (Unauthorized if unknown or revoked, Forbidden below the needed role), store
    a session of `hours`, and return its principal and what the session cookie keeps."""
    principal = authenticate(session, key)
    if not principal.role.allows(NEEDED_ROLE):
        raise Forbidden(f"this key has the {principal.role.value} role; the review page needs "
                        f"{NEEDED_ROLE.value} (or higher)")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    # Expired sessions of this key go as a new one comes: the table stays small.
    session.execute(delete(PageSession).where(PageSession.key_id == principal.key_id,
                                              PageSession.expires_at < now))
    session.add(PageSession(token_hash=hash_key(token), key_id=principal.key_id, created_at=now,
                            expires_at=now + timedelta(hours=hours)))
    session.flush()
    return principal, {"sid": token}


def sign_out(session: Session, stored: Any) -> None:
    """End the session the cookie names, for every copy of the cookie."""
    token = stored.get("sid") if isinstance(stored, dict) else None
    if isinstance(token, str):
        session.execute(delete(PageSession).where(PageSession.token_hash == hash_key(token)))


def principal_from(session: Session, stored: Any) -> Principal | None:
    """The principal of a session cookie's contents, or None if they no longer name a live
    session of a live key (signed out, expired, revoked, or not a dict we wrote)."""
    token = stored.get("sid") if isinstance(stored, dict) else None
    if not isinstance(token, str) or len(token) > 100:
        return None
    row = session.execute(
        select(ApiKey, Project)
        .join(PageSession, PageSession.key_id == ApiKey.id)
        .join(Project, Project.id == ApiKey.project_id)
        .where(PageSession.token_hash == hash_key(token), PageSession.expires_at > utcnow(),
               ApiKey.revoked_at.is_(None))
    ).first()
    if row is None or not row.ApiKey.role.allows(NEEDED_ROLE):
        return None
    api_key, project = row.ApiKey, row.Project
    return Principal(api_key.id, api_key.name, project.id, project.name, api_key.role)


def csrf_token(cookie: dict[str, Any]) -> str:
    """The form token of this browser's session cookie (made on first use)."""
    token = cookie.get(CSRF_KEY)
    if not isinstance(token, str):
        token = cookie[CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_ok(cookie: dict[str, Any], submitted: str | None) -> bool:
    expected = cookie.get(CSRF_KEY)
    return (isinstance(expected, str) and isinstance(submitted, str)
            and hmac.compare_digest(expected.encode(), submitted.encode()))
