"""The one error handler: every failure leaves as {"error", "detail"} with a fitting status."""

from __future__ import annotations

import sqlite3

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from app.errors import Conflict, UnexpectedErrorMiddleware, install_error_handlers


def app_raising(exc: Exception) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    # as create_app does: unexpected exceptions are answered by the outermost middleware
    app.add_middleware(UnexpectedErrorMiddleware)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


def test_app_errors_carry_their_status_and_extra_fields():
    r = app_raising(Conflict("taken", extra={"ids": ["a"]})).get("/boom")
    assert r.status_code == 409
    assert r.json() == {"error": "Conflict", "detail": "taken", "ids": ["a"]}


def test_a_busy_database_is_503_with_retry_after():
    locked = OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))
    r = app_raising(locked).get("/boom")
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.json()["error"] == "ServiceUnavailable"


def test_unexpected_errors_are_500_without_internals():
    r = app_raising(RuntimeError("secret internals")).get("/boom")
    assert r.status_code == 500 and r.json()["error"] == "InternalError"
    assert "secret" not in r.text


def test_unknown_routes_and_methods_are_json():
    client = app_raising(RuntimeError())
    assert client.get("/nope").json()["error"] == "NotFound"
    r = client.post("/boom")
    assert r.status_code == 405 and r.json()["error"] == "MethodNotAllowed"
