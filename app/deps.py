"""Request-scoped dependencies: the database session (committed at the request boundary) and the
caller's identity. Route handlers take these as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import Scope

from app.auth.models import Role
from app.auth.service import Principal, authenticate
from app.body_limit import scope_state
from app.db import session_scope
from app.errors import Forbidden, ServiceUnavailable, Unauthorized
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


_NO_KEY = "send an API key as 'Authorization: Bearer <key>'"


def get_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    checked = getattr(request.state, "principal", None)
    if checked is not None:  # checked before the body was read (see `key_before_body`)
        return checked  # type: ignore[no-any-return]
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized(_NO_KEY)
    return authenticate(session, credentials.credentials)


async def key_before_body(scope: Scope) -> None:
    """The API key of a /v1 request with a body, checked before the body is read (FastAPI reads
    bodies before dependencies run); the principal is kept for `get_principal`."""
    if not scope.get("path", "").startswith("/v1/"):
        return
    scheme, _, key = Headers(scope=scope).get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized(_NO_KEY)
    factory = scope["app"].state.session_factory

    def lookup() -> Principal:
        with factory() as session:
            return authenticate(session, key.strip())

    try:
        scope_state(scope)["principal"] = await run_in_threadpool(lookup)
    except OperationalError:
        raise ServiceUnavailable("the database is busy or unreachable; try again") from None


def require(role: Role):  # type: ignore[no-untyped-def]
    """Dependency factory: the caller's key must have at least `role`."""

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.role.allows(role):
            raise Forbidden(
                f"this needs the {role.value} role (or higher); the key has {principal.role.value}"
            )
        return principal

    check.required_role = role  # type: ignore[attr-defined]  # the API docs list 403 by it
    return check


Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Reviewer = Annotated[Principal, Depends(require(Role.reviewer))]
Editor = Annotated[Principal, Depends(require(Role.editor))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
