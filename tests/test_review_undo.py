"""Undoing a review and multi-label reviews over the JSON API, on both databases, with the
bundled embedder: an undone review leaves the label index (retrieval stops finding it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.items.models import Item
from app.labelling.models import Annotation, Exemplar, ItemState
from tests.helpers import bearer, new_key, seed_labelled_items
from tests.test_review_page import ROWS, SCHEMA


def _state(factory: Any, item_id: str) -> ItemState | None:
    with factory() as session:
        return session.scalar(select(ItemState).join(Item, Item.id == ItemState.item_id)
                              .where(Item.external_id == item_id))


def _reviews(factory: Any, item_id: str) -> list[tuple[str | None, list[str], str | None]]:
    with factory() as session:
        return [tuple(r) for r in session.execute(  # type: ignore[misc]
            select(Annotation.label, Annotation.labels, Annotation.note)
            .join(Item, Item.id == Annotation.item_id)
            .where(Item.external_id == item_id, Annotation.status == "reviewed")
            .order_by(Annotation.id))]


def _top_label(client: Any, factory: Any, text: str) -> str:
    r = client.post("/v1/classify", headers=bearer(new_key(factory, "acme", "editor")), json={
        "schema": "support", "text": text, "strategy": "retrieval"})
    assert r.status_code == 200, r.text
    return r.json()["trace"][0]["label"]


def test_undo_restores_the_model_decision_and_takes_the_exemplar_out(client, session_factory):
    seed_labelled_items(session_factory, "acme", SCHEMA, ROWS)
    auth = bearer(new_key(session_factory, "acme", "reviewer"))
    text = dict((r[0], r[1]) for r in ROWS)["t2"]
    before = _top_label(client, session_factory, text)
    assert before != "feature_request"

    r = client.post("/v1/items/t2/review", headers=auth,
                    json={"label": "feature_request", "note": "slip"})
    assert r.status_code == 200 and r.json()["labels"] == ["feature_request"]
    # the exemplar is retrieved first
    assert _top_label(client, session_factory, text) == "feature_request"

    r = client.delete("/v1/items/t2/review", headers=auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": "t2", "schema": "support", "label": "billing_refund",
                        "status": "needs_review"}
    state = _state(session_factory, "t2")
    assert state is not None
    assert (state.status, state.label, state.confidence) == ("needs_review", "billing_refund",
                                                             0.46)
    assert state.lease_owner is not None  # back in the queue, held for the one who undid it
    assert _reviews(session_factory, "t2") == []  # the slip counts nowhere
    with session_factory() as session:
        assert session.scalars(select(Exemplar.label).order_by(Exemplar.id)).all() == [
            "feature_request", None]
    assert _top_label(client, session_factory, text) == before  # out of the index again

    # nothing left to undo; and the item is in this reviewer's queue again
    assert client.delete("/v1/items/t2/review", headers=auth).status_code == 409
    got = client.get("/v1/review", params={"schema": "support", "limit": 6}, headers=auth).json()
    assert "t2" in [i["id"] for i in got["items"]]


def test_undo_of_a_re_review_goes_back_to_the_first_review(client, session_factory):
    seed_labelled_items(session_factory, "acme", SCHEMA, ROWS)
    auth = bearer(new_key(session_factory, "acme", "reviewer"))
    for label in ("app_crash", "login_problem"):
        assert client.post("/v1/items/t2/review", headers=auth,
                           json={"label": label}).status_code == 200
    r = client.delete("/v1/items/t2/review", headers=auth)
    assert r.json()["status"] == "reviewed" and r.json()["label"] == "app_crash"
    assert [x[0] for x in _reviews(session_factory, "t2")] == ["app_crash"]
    with session_factory() as session:
        assert session.scalars(select(Exemplar.label).order_by(Exemplar.id)).all() == [
            "app_crash", "login_problem", "app_crash"]


def test_only_the_reviewer_or_an_admin_may_undo(client, session_factory):
    seed_labelled_items(session_factory, "acme", SCHEMA, ROWS)
    mine = bearer(new_key(session_factory, "acme", "reviewer"))
    other = bearer(new_key(session_factory, "acme", "reviewer"))
    admin = bearer(new_key(session_factory, "acme", "admin"))
    client.post("/v1/items/t1/review", headers=mine, json={"label": None}).raise_for_status()
    r = client.delete("/v1/items/t1/review", headers=other)
    assert r.status_code == 403 and "only that reviewer" in r.json()["detail"]
    assert client.delete("/v1/items/t1/review", headers=admin).status_code == 200
    viewer = bearer(new_key(session_factory, "acme", "viewer"))
    assert client.delete("/v1/items/t1/review", headers=viewer).status_code == 403
    assert client.delete("/v1/items/nope/review", headers=mine).status_code == 404


def test_multi_label_review(client, session_factory):
    seed_labelled_items(session_factory, "acme", {**SCHEMA, "multi_label": True}, ROWS)
    auth = bearer(new_key(session_factory, "acme", "reviewer"))
    r = client.post("/v1/items/t5/review", headers=auth,
                    json={"labels": ["billing_refund", "account_deletion", "billing_refund"]})
    assert r.status_code == 200, r.text
    assert r.json()["label"] == "billing_refund"
    assert r.json()["labels"] == ["billing_refund", "account_deletion"]
    assert _reviews(session_factory, "t5") == [("billing_refund",
                                                ["billing_refund", "account_deletion"], None)]
    r = client.post("/v1/items/t6/review", headers=auth, json={"labels": []})
    assert r.status_code == 200 and r.json()["label"] is None and r.json()["labels"] == []

    for body, words in [({"labels": ["nope"]}, "not a label"),
                        ({"label": "app_crash", "labels": ["app_crash"]}, "not both"),
                        ({}, "give `label`")]:
        r = client.post("/v1/items/t1/review", headers=auth, json=body)
        assert r.status_code == 422 and words in r.json()["detail"], r.text


def test_several_labels_on_a_single_label_schema_are_refused(client, session_factory):
    seed_labelled_items(session_factory, "acme", SCHEMA, ROWS)
    auth = bearer(new_key(session_factory, "acme", "reviewer"))
    r = client.post("/v1/items/t1/review", headers=auth,
                    json={"labels": ["app_crash", "login_problem"]})
    assert r.status_code == 422 and "not a multi-label schema" in r.json()["detail"]
    r = client.post("/v1/items/t1/review", headers=auth, json={"labels": ["app_crash"]})
    assert r.status_code == 200 and r.json()["labels"] == ["app_crash"]
