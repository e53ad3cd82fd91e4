"""Input the database cannot store, or that could never be served again, is refused at the API
edge with a 422 naming the field (both databases): deep metadata, NaN/Infinity, integers beyond
the database's range, NUL in the review page's requests."""

from __future__ import annotations

import base64

from tests.helpers import bearer, demo_schema, new_key, page_sign_in


def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


def test_deep_metadata_is_refused_and_listing_keeps_working(client, session_factory):
    editor = bearer(new_key(session_factory, "acme", "editor"))
    deep = client.post("/v1/items", json={"id": "deep", "text": "t", "metadata": _nested(300)},
                       headers=editor)
    assert deep.status_code == 422 and "metadata" in deep.json()["detail"]
    assert "300 levels" in deep.json()["detail"]
    ok = client.post("/v1/items", json={"id": "ok", "text": "t", "metadata": _nested(20)},
                     headers=editor)
    assert ok.status_code == 201
    assert client.get("/v1/items", headers=editor).status_code == 200
    assert client.get("/v1/items/ok", headers=editor).status_code == 200


def test_nan_and_infinity_in_metadata_are_refused(client, session_factory):
    editor = bearer(new_key(session_factory, "acme", "editor"))
    for token in ("NaN", "Infinity", "-Infinity"):
        r = client.post("/v1/items", content=f'{{"text": "t", "metadata": {{"a": {token}}}}}',
                        headers={**editor, "Content-Type": "application/json"})
        assert r.status_code == 422, (token, r.text)
        assert "metadata" in r.json()["detail"] and "NaN" in r.json()["detail"]


def test_integers_beyond_the_database_range_are_422(client, session_factory):
    admin = bearer(new_key(session_factory, "acme", "admin"))
    assert client.post("/v1/schemas", json=demo_schema(), headers=admin).status_code == 201
    huge = 2**40
    r = client.get(f"/v1/schemas/support/versions/{huge}", headers=admin)
    assert r.status_code == 422 and "version" in r.json()["detail"]
    r = client.post("/v1/classify", json={"schema": "support", "text": "hi", "version": huge},
                    headers=admin)
    assert r.status_code == 422 and "version" in r.json()["detail"]
    r = client.post("/v1/jobs", json={"schema": "support", "items": {}, "version": huge},
                    headers=admin)
    assert r.status_code == 422 and "version" in r.json()["detail"]
    cursor = base64.urlsafe_b64encode(str(2**70).encode()).decode().rstrip("=")
    r = client.get("/v1/items", params={"cursor": cursor}, headers=admin)
    assert r.status_code == 422 and "cursor" in r.json()["detail"]


def test_nul_in_review_page_requests_is_422(client, session_factory):
    reviewer = new_key(session_factory, "acme", "reviewer")
    admin = bearer(new_key(session_factory, "acme", "admin"))
    assert client.post("/v1/schemas", json=demo_schema(), headers=admin).status_code == 201
    signed_in = page_sign_in(client, reviewer)
    assert signed_in.status_code == 303
    page = {"X-Requested-With": "rac-review-page"}
    for path, body in (("/review/api/claim", {"schema": "support", "exclude": ["a\x00b"]}),
                       ("/review/api/claim", {"schema": "sup\x00port"}),
                       ("/review/api/release", {"schema": "support", "item": "a\x00"})):
        r = client.post(path, json=body, headers=page)
        assert r.status_code == 422, (path, r.text)
        assert "NUL" in r.json()["detail"]
