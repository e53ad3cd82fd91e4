"""Trained judges over the API: train from reviews, list, activate, classify (both databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.labelling.models import Annotation
from tests.helpers import bearer, demo_schema, new_key, seed_labelled_items, wait_for


def seed_and_review(client, factory, n: int = 6) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """n model decisions, each then reviewed by a person: label_(i % 3)."""
    rows = [(f"r{i}", f"example {i % 3}{'ab'[(i // 3) % 2]} once more ({i})", "label_0", 0.5,
             "needs_review") for i in range(n)]
    seed_labelled_items(factory, "acme", demo_schema(), rows)
    headers = bearer(new_key(factory, "acme", "admin"))
    for i in range(n):
        r = client.post(f"/v1/items/r{i}/review", json={"label": f"label_{i % 3}"},
                        headers=headers)
        assert r.status_code == 200, r.text
    return headers


def test_no_judges_yet_and_bad_requests(client, session_factory):
    seed_labelled_items(session_factory, "acme", demo_schema(), [("a", "t", "label_0", 0.9,
                                                                 "accepted")])
    viewer = bearer(new_key(session_factory, "acme", "viewer"))
    admin = bearer(new_key(session_factory, "acme", "admin"))
    assert client.get("/v1/schemas/support/judges", headers=viewer).json() == []
    assert client.post("/v1/schemas/support/judge/train", json={},
                       headers=viewer).status_code == 403
    assert client.post("/v1/schemas/support/judges/1/activate",
                       headers=admin).status_code == 404
    assert client.post("/v1/schemas/nope/judge/train", json={}, headers=admin).status_code == 404
    r = client.post("/v1/schemas/support/judge/train", json={"epochs": 0}, headers=admin)
    assert r.status_code == 422
    seed_labelled_items(session_factory, "acme", demo_schema(name="one", n_labels=1), [])
    r = client.post("/v1/schemas/one/judge/train", json={}, headers=admin)
    assert r.status_code == 400 and "2+ labels" in r.json()["detail"]


@pytest.mark.slow
def test_train_from_reviews_activate_and_classify(client, session_factory):
    headers = seed_and_review(client, session_factory)
    r = client.post("/v1/schemas/support/judge/train",
                    json={"epochs": 1, "train_layers": 1, "examples_per_label": 1},
                    headers=headers)
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["state"] == "training" and started["version"] == 1
    assert started["active"] is False and started["prompt_version"] == "yn-t1"

    def finished():  # type: ignore[no-untyped-def]
        judges = client.get("/v1/schemas/support/judges", headers=headers).json()
        return judges[0] if judges[0]["state"] != "training" else None

    judge = wait_for(finished, timeout=600, interval=1.0, what="the training")
    assert judge["state"] == "ready", judge["error"]
    # 2 examples per label in the schema + 1 reviewed item per label; 2 negatives each
    assert judge["data"]["reviewed_or_data_items"] == 3
    assert judge["data"]["pairs"] == {"positive": 9, "hard": 18, "easy": 0}
    assert judge["metrics"]["seconds"] > 0 and judge["metrics"]["train_auc_after"] is not None

    r = client.post("/v1/schemas/support/judges/1/activate", headers=headers)
    assert r.status_code == 200 and r.json()["active"] is True
    client.post("/v1/items", json={"id": "fresh", "text": "example 1a"}, headers=headers)
    # sequential asks the judge about every item (the default cascade only where it can
    # change the decision)
    r = client.post("/v1/classify", json={"schema": "support", "item_id": "fresh",
                                          "strategy": "sequential"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["model_id"] == judge["model_id"] == "trained:support-v1"
    assert r.json()["prompt_version"] == "yn-t1" and r.json()["judge_calls"] >= 1
    with session_factory() as session:
        stored = session.scalars(select(Annotation).where(Annotation.source == "model")
                                 .order_by(Annotation.id.desc()).limit(1)).one()
    assert stored.model_id == "trained:support-v1"

    r = client.post("/v1/schemas/support/judges/1/deactivate", headers=headers)
    assert r.json()["active"] is False
    r = client.post("/v1/classify", json={"schema": "support", "text": "example 1a",
                                          "strategy": "sequential"}, headers=headers)
    assert r.json()["model_id"].startswith("llama.cpp:")  # the bundled judge again


def test_a_trained_judge_decides_at_its_own_threshold_unless_the_caller_chose(tmp_path):
    from app.config import Settings
    from app.labelling.service import engine_for, params_for
    from app.rac.engine import Engine
    from app.rac.index_store import IndexStore
    from app.rac.trained_prompt import TRAINED_ACCEPT_THRESHOLD
    from app.runtime import Runtime
    from tests.rac.fakes import KeywordEmbedder, ScriptedJudge

    settings = Settings(data_dir=tmp_path)
    embedder, default, trained = KeywordEmbedder(["card"]), ScriptedJudge({}), ScriptedJudge({})
    runtime = Runtime(settings, embedder, default, Engine(embedder, default),
                      IndexStore(settings.index_dir, embedder))
    configured = runtime.params()
    assert params_for(runtime, default, configured) == configured
    assert params_for(runtime, trained, configured).accept_threshold == TRAINED_ACCEPT_THRESHOLD
    chosen = runtime.params(accept_threshold=0.3)
    assert params_for(runtime, trained, chosen).accept_threshold == 0.3
    assert engine_for(runtime, default) is runtime.engine
    assert engine_for(runtime, trained).judge is trained
