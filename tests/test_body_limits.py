"""Request bodies are bounded on every route and never read before the API key is checked (both
databases). The refusals that must come before the body are checked on a live server over a raw
socket: the request announces a large body and sends none of it, so a server that waited for the
body (to parse it before checking the key) would never answer."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient

from tests.helpers import bearer, live_server, new_key

ANNOUNCED = 200_000_000  # 200 MB announced; never sent


def _headers_only(base_url: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Send a POST's headers (announcing ANNOUNCED bytes of body, sending none) and read the
    status line and body of the answer; a timeout means the server waited for the body."""
    url = urlparse(base_url)
    lines = [f"POST {path} HTTP/1.1", f"Host: {url.hostname}", "Content-Type: application/json",
             f"Content-Length: {ANNOUNCED}", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer.partition(b"\r\n\r\n")[2]


@pytest.fixture
def app(settings):  # type: ignore[no-untyped-def]
    from app.main import create_app

    return create_app(settings.model_copy(update={"max_body_bytes": 1024 * 1024}))


def test_a_body_without_a_valid_key_is_refused_before_it_is_read(app, session_factory):
    editor = new_key(session_factory, "acme", "editor")
    with live_server(app) as url:
        for path in ("/v1/items", "/v1/schemas", "/v1/datasets", "/v1/classify"):
            status, body = _headers_only(url, path, {})
            assert status == 401 and b'"Unauthorized"' in body, (path, body)
            status, body = _headers_only(url, path, bearer("rac_deadbeef_not-a-real-key"))
            assert status == 401 and b"unknown or revoked" in body, (path, body)
        # with a good key, the announced length alone is refused: nothing is read either
        status, body = _headers_only(url, "/v1/items", bearer(editor))
        assert status == 413 and b'"PayloadTooLarge"' in body and b"1048576" in body


def test_every_json_route_counts_its_body(app, session_factory):
    """A 2.1 MB item list against a 1 MiB limit (it used to pass: only schema push and
    uploads were limited), sent with and without a declared length."""
    editor = bearer(new_key(session_factory, "acme", "editor"))
    items = [{"id": f"i{n}", "text": "x" * 2000} for n in range(1050)]
    with TestClient(app) as client:
        r = client.post("/v1/items", json=items, headers=editor)
        assert r.status_code == 413, r.text[:200]
        assert r.json()["error"] == "PayloadTooLarge"
        import json

        raw = json.dumps(items).encode()
        chunked = client.post("/v1/items", content=iter([raw[i:i + 65536]
                                                         for i in range(0, len(raw), 65536)]),
                              headers={**editor, "Content-Type": "application/json"})
        assert chunked.status_code == 413 and chunked.json()["error"] == "PayloadTooLarge"
        # under the limit all is as before
        assert client.post("/v1/items", json=items[:100], headers=editor).status_code == 201
        # the review page (no API key; a session cookie) has its own, small limit
        big_form = client.post("/review/sign-in", data={"key": "k" * (2 * 1024 * 1024)})
        assert big_form.status_code == 413
