"""The workbench pages' HTTP rules without a browser: each action behind its role, the schema
page's counts, and clear 4xx answers to bad filters. Both databases."""

from __future__ import annotations

from tests.helpers import new_key, page_sign_in, seed_labelled_items
from tests.test_review_page import PAGE_HEADERS, ROWS, SCHEMA


def _signed_in(client, factory, role):  # type: ignore[no-untyped-def]
    r = page_sign_in(client, new_key(factory, "acme", role))
    assert r.status_code == 303, r.text


def test_each_action_needs_its_role(client, session_factory):
    seed_labelled_items(session_factory, "acme", SCHEMA, ROWS)
    _signed_in(client, session_factory, "reviewer")
    filters = {"schema": "support"}
    r = client.post("/review/api/bulk", headers=PAGE_HEADERS,
                    json={"filters": filters, "action": "send_to_review"})
    assert r.status_code == 403 and "editor role" in r.json()["detail"]
    r = client.post("/review/api/jobs", headers=PAGE_HEADERS,
                    json={"schema": "support", "dataset": "ds_x"})
    assert r.status_code == 403
    r = client.post("/review/api/schemas", headers=PAGE_HEADERS, files={"file": ("s.yaml", b"x")})
    assert r.status_code == 403 and "admin role" in r.json()["detail"]
    for path in ("/review/items?schema=support", "/review/datasets", "/review/jobs",
                 "/review/schemas", "/review/schemas/support"):
        assert client.get(path).status_code == 200, path


def test_schema_page_and_bulk_counts(client, session_factory):
    seed_labelled_items(session_factory, "acme", SCHEMA, ROWS)
    _signed_in(client, session_factory, "editor")
    html = client.get("/review/schemas/support").text
    assert "login_problem" in html and "Locked out of my account" in html
    body = {"filters": {"schema": "support", "status": "needs_review"}, "action": "accept",
            "min_confidence": 0.6}
    r = client.post("/review/api/bulk", headers=PAGE_HEADERS, json=body)
    assert r.json() == {"count": 2, "done": False}  # t5 (0.63) and t6 (0.68)
    r = client.post("/review/api/bulk", headers=PAGE_HEADERS, json={**body, "expected": 3})
    assert r.status_code == 409 and "2 items now match" in r.json()["detail"]
    r = client.post("/review/api/bulk", headers=PAGE_HEADERS, json={**body, "expected": 2})
    assert r.json() == {"count": 2, "done": True}
    page = client.get("/review/items", params={"schema": "support", "status": "accepted"}).text
    assert 'data-item="t5"' in page and 'data-item="t6"' in page and 'data-item="ok"' in page
    for params, words in [({"schema": "support", "min_confidence": "lots"}, "a number"),
                          ({"schema": "support", "status": "odd"}, "status must be"),
                          ({"schema": "nope"}, "nope")]:
        r = client.get("/review/items", params=params)
        assert r.status_code in (404, 422) and words in r.json()["detail"], r.text
