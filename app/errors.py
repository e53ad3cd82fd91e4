"""One error hierarchy, one handler: every error leaves the API as
`{"error": "<ErrorClass>", "detail": "..."}` with the status code its class carries."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class AppError(Exception):
    status_code = 500

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    status_code = 401

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class PayloadTooLarge(AppError):
    status_code = 413


class UnsupportedMediaType(AppError):
    status_code = 415


class InvalidInput(AppError):
    """The request parsed but its content is wrong (e.g. a label schema that breaks a rule)."""

    status_code = 422


class ServiceUnavailable(AppError):
    """A dependency (the LLM server, the database) did not answer; the caller may retry."""

    status_code = 503


def error_body(name: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": name, "detail": detail, **extra}


def error_response(exc: AppError) -> JSONResponse:
    return JSONResponse(error_body(type(exc).__name__, exc.detail, **exc.extra),
                        status_code=exc.status_code, headers=exc.headers)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts)


def describe_validation_errors(errors: list[Any]) -> str:
    return "; ".join(f"{_location(e.get('loc', ()))}: {e.get('msg')}" for e in errors[:20])


_STATUS_NAMES = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 409: "Conflict", 413: "PayloadTooLarge", 415: "UnsupportedMediaType",
    422: "InvalidInput", 429: "TooManyRequests", 503: "ServiceUnavailable",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse(
            error_body("RequestValidationError", describe_validation_errors(errors), errors=errors),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = _STATUS_NAMES.get(exc.status_code, "HTTPError")
        return JSONResponse(
            error_body(name, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OperationalError)
    async def _database_unavailable(_: Request, exc: OperationalError) -> JSONResponse:
        # A locked SQLite file (a long upload holds its one write lock) or a database that went
        # away: the request may succeed if sent again, so say that instead of a 500.
        log.warning("database unavailable: %s", exc.orig)
        return JSONResponse(
            error_body("ServiceUnavailable", "the database is busy or unreachable; try again"),
            status_code=503, headers={"Retry-After": "5"})



class WatchedSend:
    """An ASGI `send` that remembers whether the response has started (after that, an error
    can no longer be answered with a status of its own)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class UnexpectedErrorMiddleware:
    """The last resort: an exception no handler knows becomes a logged 500 with the JSON error.

    Here, not in an `Exception` handler: Starlette re-raises after such a handler answers, and
    uvicorn then closes the connection, so the client's next request on it failed too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watched = WatchedSend(send)
        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            log.error("unhandled error in %s %s: %s", scope.get("method"), scope.get("path"),
                      type(exc).__name__, exc_info=exc)
            if watched.started:  # part of a response went out: only closing tells the client
                raise
            await JSONResponse(
                error_body("InternalError", "an unexpected error occurred; it has been logged"),
                status_code=500)(scope, receive, send)
