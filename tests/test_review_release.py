"""Skipping in the review queue: `exclude` on a claim and releasing a lease (both databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.items.models import Item
from app.labelling.models import ItemState
from tests.helpers import bearer, demo_schema, new_key, seed_labelled_items

ROWS = [
    ("a", "first", "label_0", 0.10, "needs_review"),
    ("b", "second", "label_1", 0.20, "needs_review"),
    ("c", "third", None, 0.30, "no_match"),
]


@pytest.fixture
def seeded(session_factory):
    seed_labelled_items(session_factory, "acme", demo_schema(), ROWS)
    return session_factory


def _ids(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [i["id"] for i in response.json()["items"]]


def test_exclude_leaves_items_out(client, seeded):
    me = bearer(new_key(seeded, "acme", "reviewer"))
    got = client.get("/v1/review", params={"schema": "support", "limit": 1, "exclude": ["a"]},
                     headers=me)
    assert _ids(got) == ["b"]
    # my own lease on b comes back first unless I exclude it too: "the next one, not this one"
    assert _ids(client.get("/v1/review", params={"schema": "support", "limit": 1},
                           headers=me)) == ["b"]
    assert _ids(client.get("/v1/review", params=[("schema", "support"), ("limit", "1"),
                                                 ("exclude", "a"), ("exclude", "b")],
                           headers=me)) == ["c"]
    too_many = [("schema", "support")] + [("exclude", f"x{i}") for i in range(1001)]
    assert client.get("/v1/review", params=too_many, headers=me).status_code == 422


def test_release_lets_another_reviewer_take_the_item_at_once(client, seeded):
    a = bearer(new_key(seeded, "acme", "reviewer"))
    b = bearer(new_key(seeded, "acme", "reviewer"))
    assert _ids(client.get("/v1/review", params={"schema": "support", "limit": 1},
                           headers=a)) == ["a"]
    assert _ids(client.get("/v1/review", params={"schema": "support", "limit": 1},
                           headers=b)) == ["b"]
    # b cannot release a's lease: it stays a's
    assert client.post("/v1/items/a/release", headers=b).status_code == 204
    assert _ids(client.get("/v1/review", params={"schema": "support", "limit": 1,
                                                 "exclude": ["b"]}, headers=b)) == ["c"]
    r = client.post("/v1/items/a/release", params={"schema": "support"}, headers=a)
    assert r.status_code == 204, r.text
    with seeded() as session:
        state = session.scalars(select(ItemState).join(Item, Item.id == ItemState.item_id)
                                .where(Item.external_id == "a")).one()
        assert (state.lease_owner, state.lease_token, state.lease_expires_at) == (None, None, None)
        assert state.status == "needs_review"  # released, not reviewed
    got = client.get("/v1/review", params={"schema": "support", "limit": 3}, headers=b)
    assert _ids(got) == ["a", "b", "c"]
    assert client.post("/v1/items/a/release", headers=a).status_code == 204  # idempotent


def test_release_needs_reviewer_role_and_a_known_item(client, seeded):
    viewer = bearer(new_key(seeded, "acme", "viewer"))
    assert client.post("/v1/items/a/release", headers=viewer).status_code == 403
    reviewer = bearer(new_key(seeded, "acme", "reviewer"))
    assert client.post("/v1/items/nope/release", headers=reviewer).status_code == 404
    r = client.post("/v1/items/a/release", params={"schema": "nope"}, headers=reviewer)
    assert r.status_code == 404 and "nope" in r.json()["detail"]
