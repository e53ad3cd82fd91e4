"""A job with a target precision reads its cutoff from its own items, once, before its first
chunk (both databases, the real bundled embedder and the schema prior)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.jobs import items_cutoff
from app.main import create_app
from tests.helpers import bearer, new_key, wait_for
from tests.test_schema_prior import small_schema

TEXTS = [
    "my card still hasn't arrived", "where is the card you sent me", "card not here yet",
    "how can I link a card I already have", "add my old card back to the app",
    "what rate do you use to exchange money", "how is the exchange rate worked out",
    "the rate on my purchase abroad was wrong", "you charged me a bad exchange rate",
    "there is an extra fee on my statement", "what is this small charge I did not make",
    "my ATM withdrawal is still pending", "cash came out but the withdrawal is pending",
    "which currencies can I hold", "do you support euros and dollars",
    "how long until my card is delivered", "when will the new card get to me",
    "I want to close my account", "the app keeps crashing", "can I get a loan",
]
N_ITEMS = 60


@pytest.fixture
def jobs(settings):  # type: ignore[no-untyped-def]
    settings.jobs.chunk_size = 16
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def admin(jobs, session_factory) -> dict[str, str]:
    headers = bearer(new_key(session_factory, "acme", "admin"))
    assert jobs.post("/v1/schemas", json=small_schema(), headers=headers).status_code == 201
    items = [{"id": f"it-{i}", "text": f"{TEXTS[i % len(TEXTS)]} ({i})"}
             for i in range(N_ITEMS)]
    assert jobs.post("/v1/items", json=items, headers=headers).status_code == 201
    return headers


def run_job(client, headers, **body):  # type: ignore[no-untyped-def]
    r = client.post("/v1/jobs", json={"schema": "cards", "items": {}, **body}, headers=headers)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    done = wait_for(lambda: (j := client.get(f"/v1/jobs/{job_id}", headers=headers).json())
                    ["state"] in {"succeeded", "failed"} and j, 300, what="the job")
    assert done["state"] == "succeeded", done
    return done


def confidences(client, headers) -> list[tuple[float, str]]:  # type: ignore[no-untyped-def]
    r = client.get("/v1/items", params={"schema": "cards", "limit": 500}, headers=headers)
    assert r.status_code == 200, r.text
    return [(item["confidence"], item["status"]) for item in r.json()["items"]]


def test_a_job_fixes_its_cutoff_from_its_own_items(jobs, admin, monkeypatch):
    monkeypatch.setattr(items_cutoff, "MIN_ITEMS", 40)
    done = run_job(jobs, admin, strategy="retrieval", target_precision=0.9)
    params = done["params"]
    assert params["cutoff_from"] == "items" and params["cutoff_items"] == N_ITEMS
    assert params["target_precision"] is None and params["requested_target_precision"] == 0.9
    cutoff = params["cutoff"]
    seen = confidences(jobs, admin)
    assert len(seen) == N_ITEMS
    # Every chunk decided at the one fixed cutoff ...
    assert all((status == "accepted") == (conf >= cutoff) for conf, status in seen), (cutoff, seen)
    # ... the lowest at which the items' calibrated confidences above it average the target.
    above = [conf for conf, _ in seen if conf >= cutoff]
    assert above and sum(above) / len(above) >= 0.9 - 1e-6
    lower = max(conf for conf, _ in seen if conf < cutoff)
    with_next = above + [lower]
    assert sum(with_next) / len(with_next) < 0.9 + 0.02  # the next item down would miss it
    assert done["counts"]["accepted"] == len(above)


def test_a_small_job_or_a_given_cutoff_keeps_its_rule(jobs, admin):
    small = run_job(jobs, admin, strategy="retrieval", target_precision=0.9)  # 60 < 200 items
    assert small["params"]["cutoff_from"] == "calibrator"
    assert small["params"]["target_precision"] == 0.9
    given = run_job(jobs, admin, strategy="retrieval", cutoff=0.5, include_reviewed=True)
    assert given["params"]["cutoff"] == 0.5 and "cutoff_from" not in given["params"]
    assert all((status == "accepted") == (conf >= 0.5)
               for conf, status in confidences(jobs, admin))
