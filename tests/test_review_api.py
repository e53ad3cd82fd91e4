"""The review queue: order, leases, reviewed labels as ground truth, stats (both databases)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from app.auth.service import authenticate
from app.label_schemas import repository as schemas
from app.labelling.models import Annotation, ItemState
from app.review.service import claim
from tests.helpers import bearer, demo_schema, new_key, seed_labelled_items

ROWS = [
    ("auto", "fine", "label_0", 0.95, "accepted"),
    ("low", "unsure", "label_1", 0.40, "needs_review"),
    ("mid", "maybe", "label_2", 0.70, "needs_review"),
    ("none", "no idea", None, 0.20, "no_match"),
]


@pytest.fixture
def seeded(session_factory):
    seed_labelled_items(session_factory, "acme", demo_schema(n_labels=4), ROWS)
    return session_factory


def test_queue_is_least_confident_first_with_candidates(client, seeded):
    reviewer = bearer(new_key(seeded, "acme", "reviewer"))
    r = client.get("/v1/review", params={"schema": "support", "limit": 10}, headers=reviewer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["id"] for i in body["items"]] == ["none", "low", "mid"]  # accepted is not queued
    assert body["remaining"] == 3 and body["reviewed"] == 0
    first = body["items"][0]
    assert first["status"] == "no_match" and first["label"] is None
    assert [c["label"] for c in first["candidates"]] == ["label_0", "label_1", "label_2"]
    assert first["candidates"][0]["description"] == "Description of label 0."
    assert {"retrieval_score", "p_yes", "rank"} <= set(first["candidates"][0])


def test_two_reviewers_never_get_the_same_item(client, seeded):
    a = bearer(new_key(seeded, "acme", "reviewer"))
    b = bearer(new_key(seeded, "acme", "reviewer"))
    got_a = [i["id"] for i in client.get("/v1/review", params={"schema": "support", "limit": 2},
                                         headers=a).json()["items"]]
    got_b = [i["id"] for i in client.get("/v1/review", params={"schema": "support", "limit": 2},
                                         headers=b).json()["items"]]
    assert got_a == ["none", "low"] and got_b == ["mid"]
    # a reload gives a reviewer back their own leased items
    again = client.get("/v1/review", params={"schema": "support", "limit": 2}, headers=a).json()
    assert [i["id"] for i in again["items"]] == ["none", "low"]
    # reviewing an item leased by someone else is refused
    r = client.post("/v1/items/none/review", json={"label": "label_3"}, headers=b)
    assert r.status_code == 409 and "someone else" in r.json()["detail"]


def test_concurrent_claims_are_disjoint(seeded, db):
    """Many reviewers claim at the same moment from their own connections."""
    many = [(f"q{i}", f"text {i}", None, i / 100, "no_match") for i in range(60)]
    seed_labelled_items(seeded, "acme", demo_schema(name="busy"), many)
    keys = [new_key(seeded, "acme", "reviewer") for _ in range(6)]
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(keys))

    def reviewer(n: int) -> None:
        try:
            with seeded() as session:
                principal = authenticate(session, keys[n])
                schema = schemas.get_schema(session, principal.project_id, "busy")
                barrier.wait()
                leased = claim(session, principal, schema, limit=8, lease_seconds=60)
                session.commit()
                results[n] = [row.item.external_id for row in leased]
        except BaseException as exc:  # collect, the main thread asserts
            errors.append(exc)

    threads = [threading.Thread(target=reviewer, args=(n,)) for n in range(len(keys))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    claimed = [i for ids in results.values() for i in ids]
    assert len(claimed) == len(set(claimed)), "an item was handed to two reviewers"
    assert len(claimed) == 48  # 6 x 8 of 60: nobody came back empty-handed


def test_review_records_reviewer_and_makes_ground_truth(client, seeded):
    key = new_key(seeded, "acme", "reviewer")
    reviewer = bearer(key)
    client.get("/v1/review", params={"schema": "support"}, headers=reviewer)
    r = client.post("/v1/items/low/review", json={"label": "label_3", "note": "clearly 3"},
                    headers=reviewer)
    assert r.status_code == 200, r.text
    assert r.json()["label"] == "label_3" and r.json()["model_label"] == "label_1"
    item = client.get("/v1/items/low", params={"history": True}, headers=reviewer).json()
    current = item["labels"][0]
    assert current["status"] == "reviewed" and current["label"] == "label_3"
    assert current["source"].startswith("reviewer-") and current["note"] == "clearly 3"
    assert [h["status"] for h in item["history"]] == ["needs_review", "reviewed"]  # history kept
    with seeded() as session:
        stored = session.scalars(select(Annotation).where(Annotation.status == "reviewed")).one()
        assert stored.reviewer_key_id is not None
        state = session.scalars(select(ItemState).where(ItemState.annotation_id == stored.id)
                                ).one()
        assert state.lease_owner is None and state.model_label == "label_1"
    queue = client.get("/v1/review", params={"schema": "support"}, headers=reviewer).json()
    assert "low" not in [i["id"] for i in queue["items"]] and queue["reviewed"] == 1
    listed = client.get("/v1/items", params={"schema": "support", "status": "reviewed"},
                        headers=reviewer).json()["items"]
    assert [i["id"] for i in listed] == ["low"]


def test_none_of_these_labels(client, seeded):
    reviewer = bearer(new_key(seeded, "acme", "reviewer"))
    r = client.post("/v1/items/mid/review", json={"label": None}, headers=reviewer)
    assert r.status_code == 200 and r.json()["label"] is None
    labels = client.get("/v1/items/mid", headers=reviewer).json()["labels"]
    assert labels[0]["status"] == "reviewed" and labels[0]["label"] is None


@pytest.mark.parametrize(("body", "status", "needle"), [
    ({"label": "not_a_label"}, 422, "not a label"),
    ({"label": "label_0", "schema": "nope"}, 404, "nope"),
    ({"labl": "typo"}, 422, "labl"),  # the unknown field is named
    ({"label": 3}, 422, "label"),
])
def test_bad_reviews(client, seeded, body, status, needle):
    reviewer = bearer(new_key(seeded, "acme", "reviewer"))
    r = client.post("/v1/items/low/review", json=body, headers=reviewer)
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"]


def test_review_needs_reviewer_role_and_own_project(client, seeded):
    viewer = bearer(new_key(seeded, "acme", "viewer"))
    assert client.get("/v1/review", params={"schema": "support"}, headers=viewer).status_code \
        == 403
    assert client.post("/v1/items/low/review", json={"label": "label_0"},
                       headers=viewer).status_code == 403
    stranger = bearer(new_key(seeded, "globex", "admin"))
    assert client.get("/v1/review", params={"schema": "support"}, headers=stranger).status_code \
        == 404
    assert client.post("/v1/items/low/review", json={"label": "label_0"},
                       headers=stranger).status_code == 404


def test_stats_from_reviews(client, seeded):
    reviewer = bearer(new_key(seeded, "acme", "reviewer"))
    # the model said label_0 (0.95), label_1 (0.40), label_2 (0.70), none (0.20)
    client.post("/v1/items/auto/review", json={"label": "label_0"}, headers=reviewer)  # agrees
    client.post("/v1/items/low/review", json={"label": "label_3"}, headers=reviewer)  # disagrees
    client.post("/v1/items/none/review", json={"label": None}, headers=reviewer)  # agrees: none
    r = client.get("/v1/schemas/support/stats", headers=reviewer)
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["total"] == 4
    assert s["counts"] == {"accepted": 0, "needs_review": 1, "no_match": 0, "reviewed": 3}
    assert s["reviewed_model_decisions"] == 3
    assert s["agreement"] == pytest.approx(2 / 3)
    assert s["cutoff"] == 0.8
    assert s["coverage"] == pytest.approx(1 / 4)  # one item was labelled >= cutoff by the model
    assert s["reviewed_at_cutoff"] == 1 and s["precision_at_cutoff"] == 1.0
    per = {row["label"]: row for row in s["per_label"]}
    assert per["label_0"]["precision"] == 1.0 and per["label_0"]["recall"] == 1.0
    assert per["label_1"]["precision"] == 0.0 and per["label_3"]["recall"] == 0.0
