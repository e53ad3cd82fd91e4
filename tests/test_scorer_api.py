"""The learnt scorer in the service: refitted in the background from reviews (both databases)."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from app.labelling.models import Annotation
from app.scorer import service as scorer_service
from app.scorer.models import ScorerVersion
from tests.helpers import bearer, new_key, wait_for

SCHEMA = {
    "name": "cards",
    "description": "Bank customer messages.",
    "labels": [
        {"name": "card_arrival", "description": "The customer is waiting for a new card.",
         "examples": ["When will my card arrive?"]},
        {"name": "lost_card", "description": "The customer lost their card or it was stolen.",
         "examples": ["I lost my card"]},
        {"name": "refund", "description": "The customer wants money back for a purchase.",
         "examples": ["I want a refund"]},
    ],
}
REVIEWED = {"first": "My card never came in the post, it must have gone missing",
            "r2": "The postman lost my new card, it never came",
            "r3": "My replacement card disappeared somewhere in the post"}
# Nearly the same words as a reviewed item: a reviewed text is never proposed another label.
TEXTS = {**REVIEWED, "second": "My card never came in the post, it must have gone missing!",
         "third": "my card never came in the post - it must have gone missing"}


def setup(client, factory):  # type: ignore[no-untyped-def]
    headers = bearer(new_key(factory, "acme", "admin"))
    assert client.post("/v1/schemas", json=SCHEMA, headers=headers).status_code in (200, 201)
    items = [{"id": k, "text": v} for k, v in TEXTS.items()]
    assert client.post("/v1/items", json=items, headers=headers).status_code in (200, 201)
    return headers


def classify(client, headers, item_id):  # type: ignore[no-untyped-def]
    r = client.post("/v1/classify", json={"schema": "cards", "item_id": item_id,
                                          "strategy": "retrieval"}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def versions(factory) -> list[ScorerVersion]:  # type: ignore[no-untyped-def]
    with factory() as session:
        return list(session.scalars(select(ScorerVersion).order_by(ScorerVersion.version)))


def stored_scorer_version(factory, item_id: str) -> int | None:  # type: ignore[no-untyped-def]
    from app.items.models import Item

    with factory() as session:
        return session.scalars(
            select(Annotation.scorer_version).join(Item, Item.id == Annotation.item_id)
            .where(Item.external_id == item_id, Annotation.source == "model")
            .order_by(Annotation.id.desc()).limit(1)).one()


def test_a_review_changes_the_next_decision_and_the_scorer_version_is_recorded(
        client, session_factory):
    headers = setup(client, session_factory)
    before = classify(client, headers, "second")
    assert before["scorer_version"] is None and stored_scorer_version(session_factory,
                                                                      "second") is None
    # The person picks a label retrieval did not put first.
    wanted = before["trace"][1]["label"]
    assert wanted != before["label"]
    for item_id in REVIEWED:
        r = client.post(f"/v1/items/{item_id}/review", json={"schema": "cards",
                                                             "label": wanted}, headers=headers)
        assert r.status_code == 200, r.text
    after = classify(client, headers, "second")
    assert after["label"] == wanted  # the exemplars count at once, without waiting for a refit
    # ... and the refitter, woken by the reviews, fits a scorer on them in the background
    fitted = wait_for(lambda: [v for v in versions(session_factory) if v.n_reviews == 3], 60,
                      what="a scorer refit on the three reviews")
    third = classify(client, headers, "third")
    assert third["label"] == wanted and third["scorer_version"] == fitted[-1].version
    # the trace keeps the index's raw similarity; `score` is the blend the ranking used
    assert all(s["score"] < s["retrieval_score"] for s in third["trace"])
    assert all(s["score"] == s["retrieval_score"] for s in before["trace"])
    assert stored_scorer_version(session_factory, "third") == fitted[-1].version


def test_refits_never_block_a_request(client, session_factory, monkeypatch):
    headers = setup(client, session_factory)
    entered, release = threading.Event(), threading.Event()
    real_fit = scorer_service.fit_scorer

    def slow_fit(*args, **kwargs):  # type: ignore[no-untyped-def]
        entered.set()
        assert release.wait(60)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(scorer_service, "fit_scorer", slow_fit)
    r = client.post("/v1/items/first/review", json={"schema": "cards", "label": "lost_card"},
                    headers=headers)
    assert r.status_code == 200
    assert entered.wait(60), "the review did not start a refit"
    try:
        started = time.monotonic()
        during = classify(client, headers, "second")  # served while the refit is stuck
        review = client.post("/v1/items/third/review",
                             json={"schema": "cards", "label": "lost_card"}, headers=headers)
        assert review.status_code == 200
        assert time.monotonic() - started < 30
        assert during["scorer_version"] is None and versions(session_factory) == []
    finally:
        release.set()
    wait_for(lambda: versions(session_factory), 60, what="the held refit to finish")


def test_a_schema_change_retrains_cleanly(client, session_factory):
    headers = setup(client, session_factory)
    client.post("/v1/items/first/review", json={"schema": "cards", "label": "lost_card"},
                headers=headers)
    first = wait_for(lambda: versions(session_factory), 60, what="a scorer refit")[-1]
    changed = {**SCHEMA, "labels": [*SCHEMA["labels"], {
        "name": "card_fees", "description": "The customer asks about a fee for a card.",
        "examples": ["Is there a fee for a new card?"]}]}
    pushed = client.post("/v1/schemas", json=changed, headers=headers)
    assert pushed.status_code in (200, 201), pushed.text
    # the old scorer knows three labels: the new version is ranked by retrieval until a refit
    assert classify(client, headers, "second")["scorer_version"] is None
    with session_factory() as session:
        assert first.schema_id in scorer_service.due(session)
    client.app.state.scorer_refitter.wake()
    newest = wait_for(lambda: [v for v in versions(session_factory) if v.version > first.version],
                      60, what="a refit for the new schema version")[-1]
    assert newest.content_hash != first.content_hash
    decision = classify(client, headers, "second")
    assert decision["scorer_version"] == newest.version and decision["schema_version"] == 2
    with session_factory() as session:
        assert scorer_service.due(session) == []


def test_a_refit_learns_from_the_unreviewed_items_and_keeps_their_vectors(
        client, session_factory, monkeypatch):
    from app.items.models import Item
    from app.scorer.models import ItemVector

    headers = setup(client, session_factory)
    seen: list = []
    real_fit = scorer_service.fit_scorer

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        fitted = real_fit(*args, **kwargs)
        seen.append((kwargs.get("unlabelled"), fitted))
        return fitted

    monkeypatch.setattr(scorer_service, "fit_scorer", spy)
    client.post("/v1/items/first/review", json={"schema": "cards", "label": "lost_card"},
                headers=headers)
    wait_for(lambda: versions(session_factory), 60, what="a scorer refit")
    unlabelled, fitted = seen[-1]
    # the four unreviewed items: embedded, used by the fit and kept for the next refits
    assert unlabelled.shape == (len(TEXTS) - 1, 384) and fitted.n_unlabelled == len(TEXTS) - 1
    with session_factory() as session:
        kept = set(session.scalars(select(Item.external_id).join(
            ItemVector, ItemVector.item_id == Item.id)))
    assert kept == set(TEXTS) - {"first"}
    runtime = client.app.state.runtime
    calls: list[int] = []
    model = runtime.background_embedder  # what refits embed with (not the request coalescer)
    real_embed = model.embed
    monkeypatch.setattr(model, "embed",
                        lambda texts: calls.append(len(texts)) or real_embed(texts))
    client.post("/v1/items/r2/review", json={"schema": "cards", "label": "lost_card"},
                headers=headers)
    wait_for(lambda: [v for v in versions(session_factory) if v.n_reviews == 2], 60,
             what="a refit on two reviews")
    # r2 left the pool (reviewed); the rest came from the stored vectors, none embedded again
    assert seen[-1][0].shape == (len(TEXTS) - 2, 384)
    assert calls == [1]  # only the review's own exemplar vector


def test_the_unreviewed_pool_is_spread_over_all_items_not_the_newest(client, session_factory):
    """A project larger than the pool: an upload sorted by label must not leave the first
    labels' items out of the propagation (as taking the newest items did)."""
    from app.items.models import Item
    from app.label_schemas.models import LabelSchema
    from app.scorer import repository

    headers = setup(client, session_factory)
    items = [{"id": f"bulk-{n:03d}", "text": f"sorted upload, row {n}"} for n in range(200)]
    assert client.post("/v1/items", json=items, headers=headers).status_code in (200, 201)
    with session_factory() as session:
        schema = session.scalars(select(LabelSchema).where(LabelSchema.name == "cards")).one()
        ids = list(session.scalars(select(Item.id).where(Item.project_id == schema.project_id)
                                   .order_by(Item.id)))
        pool = repository.unreviewed_items(session, schema.id, schema.project_id, "any", 40)
        again = repository.unreviewed_items(session, schema.id, schema.project_id, "any", 40)
    taken = sorted(row.id for row in pool)
    assert len(taken) == 40 and taken == sorted(row.id for row in again)  # the same each refit
    # every fifth of the id range is represented, about evenly (8 each for a perfect spread)
    fifths = [sum(ids[len(ids) * k // 5] <= i < ids[min(len(ids) - 1, len(ids) * (k + 1) // 5)]
                  for i in taken) for k in range(5)]
    assert min(fifths) >= 4, fifths
