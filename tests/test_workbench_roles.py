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
    assert r.json() == {"count": 2, "done": False, "batch": None}  # t5 (0.63), t6 (0.68)
    r = client.post("/review/api/bulk", headers=PAGE_HEADERS, json={**body, "expected": 3})
    assert r.status_code == 409 and "2 items now match" in r.json()["detail"]
    r = client.post("/review/api/bulk", headers=PAGE_HEADERS, json={**body, "expected": 2})
    assert r.json()["count"] == 2 and r.json()["done"]
    page = client.get("/review/items", params={"schema": "support", "status": "accepted"}).text
    assert 'data-item="t5"' in page and 'data-item="t6"' in page and 'data-item="ok"' in page
    for params, words in [({"schema": "support", "min_confidence": "lots"}, "a number"),
                          ({"schema": "support", "status": "odd"}, "status must be"),
                          ({"schema": "nope"}, "nope")]:
        r = client.get("/review/items", params=params)
        assert r.status_code in (404, 422) and words in r.json()["detail"], r.text


def _states(factory, items):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from app.items.models import Item
    from app.labelling.models import ItemState

    with factory() as session:
        return dict(session.execute(
            select(Item.external_id, ItemState.status).join(ItemState, ItemState.item_id == Item.id)
            .where(Item.external_id.in_(items))).all())


def _bulk_notes(factory) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from app.labelling.models import Annotation

    with factory() as session:
        return session.scalar(select(func.count()).where(Annotation.note.like("bulk%"))) or 0


def test_a_bulk_action_is_undone_as_one_batch(client, session_factory):
    from fastapi.testclient import TestClient

    from tests.helpers import bearer

    seed_labelled_items(session_factory, "acme", SCHEMA, ROWS)
    _signed_in(client, session_factory, "editor")
    body = {"filters": {"schema": "support", "status": "needs_review"}, "action": "accept",
            "min_confidence": 0.6, "expected": 2}
    done = client.post("/review/api/bulk", headers=PAGE_HEADERS, json=body).json()
    assert done["count"] == 2 and done["batch"]
    assert _states(session_factory, ["t5", "t6"]) == {"t5": "accepted", "t6": "accepted"}

    # another editor may not undo it; bad ids are named
    other = TestClient(client.app)  # a second browser (the app is already started by `client`)
    _signed_in(other, session_factory, "editor")
    r = other.post("/review/api/bulk/undo", headers=PAGE_HEADERS, json={"batch": done["batch"]})
    assert r.status_code == 403 and "only the key that ran" in r.json()["detail"]
    r = client.post("/review/api/bulk/undo", headers=PAGE_HEADERS, json={"batch": "x%"})
    assert r.status_code == 422 and "batch" in r.text

    r = client.post("/review/api/bulk/undo", headers=PAGE_HEADERS, json={"batch": done["batch"]})
    assert r.json() == {"count": 2, "changed": 0}
    assert _states(session_factory, ["t5", "t6"]) == {"t5": "needs_review", "t6": "needs_review"}
    assert _bulk_notes(session_factory) == 0  # the action's annotations are gone
    r = client.post("/review/api/bulk/undo", headers=PAGE_HEADERS, json={"batch": done["batch"]})
    assert r.status_code == 404 and "already undone" in r.json()["detail"]

    # an item reviewed after the action keeps its review; the others go back
    done = client.post("/review/api/bulk", headers=PAGE_HEADERS, json=body).json()
    reviewer = bearer(new_key(session_factory, "acme", "reviewer"))
    client.post("/v1/items/t5/review", headers=reviewer,
                json={"label": "app_crash"}).raise_for_status()
    r = client.post("/review/api/bulk/undo", headers=PAGE_HEADERS, json={"batch": done["batch"]})
    assert r.json() == {"count": 1, "changed": 1}
    assert _states(session_factory, ["t5", "t6"]) == {"t5": "reviewed", "t6": "needs_review"}


def test_an_item_chosen_in_the_browser_is_opened_for_review(client, session_factory):
    from fastapi.testclient import TestClient

    seed_labelled_items(session_factory, "acme", SCHEMA, ROWS)
    _signed_in(client, session_factory, "reviewer")
    html = client.get("/review/items", params={"schema": "support"}).text
    assert 'href="/review?schema=support&amp;item=ok"' in html
    r = client.post("/review/api/open", headers=PAGE_HEADERS, json={"schema": "support",
                                                                    "item": "ok"})
    assert r.status_code == 200, r.text
    opened = r.json()["items"]
    assert [(i["id"], i["status"], i["label"]) for i in opened] == [
        ("ok", "accepted", "billing_refund")]
    assert opened[0]["candidates"]  # the model's candidates, to correct it with
    other = TestClient(client.app)  # a second reviewer (the app is already started)
    _signed_in(other, session_factory, "reviewer")
    r = other.post("/review/api/open", headers=PAGE_HEADERS, json={"schema": "support",
                                                                   "item": "ok"})
    assert r.status_code == 409 and "someone else" in r.json()["detail"]
    r = client.post("/review/api/open", headers=PAGE_HEADERS, json={"schema": "support",
                                                                    "item": "nope"})
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    viewer = TestClient(client.app)
    _signed_in(viewer, session_factory, "viewer")
    assert 'item=ok' not in viewer.get("/review/items", params={"schema": "support"}).text
    r = viewer.post("/review/api/open", headers=PAGE_HEADERS, json={"schema": "support",
                                                                    "item": "ok"})
    assert r.status_code == 403


def test_the_job_page_shows_the_cutoff_beside_the_target(client, session_factory):
    from tests.helpers import bearer

    seed_labelled_items(session_factory, "acme", SCHEMA, ROWS)
    key = new_key(session_factory, "acme", "editor")
    page_sign_in(client, key)
    fixed = client.post("/v1/jobs", headers=bearer(key), json={
        "schema": "support", "items": {"ids": ["t1"]}, "cutoff": 0.7, "strategy": "retrieval"})
    assert fixed.status_code == 202, fixed.text
    html = client.get(f"/review/jobs/{fixed.json()['id']}").text
    assert 'id="job-cutoff">0.700</strong> (fixed for this job)' in html
    target = client.post("/v1/jobs", headers=bearer(key), json={
        "schema": "support", "items": {"ids": ["t1"]}, "target_precision": 0.9,
        "strategy": "retrieval"})
    html = client.get(f"/review/jobs/{target.json()['id']}").text
    # the schema's prior turns the target into a cutoff once it is fitted (in the background)
    assert "Target precision <strong>0.90</strong>" in html
    assert "gives it now" in html or "still being fitted" in html
