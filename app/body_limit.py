"""Request bodies are bounded, and API keys checked, before anything reads a body.

FastAPI reads (and parses) a route's body before it runs the route's dependencies, so a key
checked by a dependency is checked only after the whole body sits in memory: a 200 MB request
without a key grew the server by ~590 MB before its 401, and a 2.1 MB item list passed a 1 MiB
limit that only two routes applied. This ASGI middleware sits in front of the app instead:

- a request that carries a body passes `gate` first (the API key check), else it is answered
  unread (401: the key is checked before the size, so a caller without one learns that first);
- a declared Content-Length above the route's limit is answered 413 unread;
- the bytes actually received are counted as they arrive, so a chunked body (or one that lies
  about its length) stops at the limit: memory stays bounded by the limit, whatever is sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import AppError, PayloadTooLarge, WatchedSend, error_response

Limit = int | Callable[[], int]
"""Bytes, or a function giving them at request time (tests lower a module's limit)."""
Gate = Callable[[Scope], Awaitable[None]]
"""Checks a request with a body before it is read; raises an AppError to refuse it."""


class BodyTooLarge(HTTPException):
    """Raised from `receive` once the body passes its limit. An HTTPException, so FastAPI's body
    reading passes it on unchanged (it turns other errors into a 400) and the app's handler
    answers 413 with the JSON error."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body is larger than the limit of {limit} bytes")


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in headers


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, default: Limit, by_prefix: Mapping[str, Limit],
                 gate: Gate | None = None) -> None:
        self.app = app
        self.default = default
        # Longest prefix first, so "/v1/datasets" wins over "/v1".
        self.by_prefix = sorted(by_prefix.items(), key=lambda kv: -len(kv[0]))
        self.gate = gate

    def limit_for(self, scope: Scope) -> int:
        path: str = scope.get("path", "")
        chosen = next((limit for prefix, limit in self.by_prefix
                       if path == prefix or path.startswith(prefix.rstrip("/") + "/")),
                      self.default)
        return chosen() if callable(chosen) else chosen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if _has_body(headers):
            refusal = await self._refuse_unread(scope, headers)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        limit = self.limit_for(scope)
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        watched = WatchedSend(send)
        try:
            await self.app(scope, counted_receive, watched)
        except BodyTooLarge as exc:
            # Read outside a route's own error handling (e.g. by a streaming body reader).
            if watched.started:
                raise
            await error_response(PayloadTooLarge(str(exc.detail)))(scope, receive, send)

    async def _refuse_unread(self, scope: Scope, headers: Headers) -> JSONResponse | None:
        if self.gate is not None:
            try:
                await self.gate(scope)
            except AppError as exc:
                return error_response(exc)
        declared = headers.get("content-length", "").strip()
        limit = self.limit_for(scope)
        if declared.isdigit() and int(declared) > limit:
            return error_response(PayloadTooLarge(
                f"the body is {declared} bytes; the limit is {limit}"))
        return None


def scope_state(scope: Scope) -> dict[str, Any]:
    """`request.state` of the request this scope belongs to."""
    state: dict[str, Any] = scope.setdefault("state", {})
    return state
