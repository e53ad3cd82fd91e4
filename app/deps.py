"""Request-scoped dependencies: the database session (committed at the request boundary) and the
caller's identity. Route handlers take these as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.auth.service import Principal, authenticate
from app.db import session_scope
from app.errors import Forbidden, Unauthorized
from app.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="An API key made by `rac keys create`.")


def get_session(request: Request) -> Iterator[Session]:
    with session_scope(request.app.state.session_factory) as session:
        yield session


# scope="function": commit before the response is sent, so a 2xx always means "stored".
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_principal(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    return authenticate(session, credentials.credentials)


def require(role: Role):  # type: ignore[no-untyped-def]
    """Dependency factory: the caller's key must have at least `role`."""

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.role.allows(role):
            raise Forbidden(
                f"this needs the {role.value} role (or higher); the key has {principal.role.value}"
            )
        return principal

    return check


Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Reviewer = Annotated[Principal, Depends(require(Role.reviewer))]
Editor = Annotated[Principal, Depends(require(Role.editor))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
