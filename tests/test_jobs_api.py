"""Batch jobs through the API with the in-process worker (both databases)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.datasets.models import Dataset, DatasetItem
from app.items.models import Item
from app.main import create_app
from tests.helpers import (
    SCHEMAS_DIR,
    bearer,
    job_annotation_counts,
    new_key,
    seed_labelled_items,
    wait_for,
)


@pytest.fixture
def jobs_client(settings):
    settings.jobs.chunk_size = 7
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def editor(jobs_client, session_factory) -> dict[str, str]:
    admin = bearer(new_key(session_factory, "acme", "admin"))
    jobs_client.post("/v1/schemas", content=(SCHEMAS_DIR / "demo.yaml").read_bytes(),
                     headers={**admin, "Content-Type": "application/yaml"})
    texts = ["I was charged twice", "the app crashes", "please add dark mode",
             "I forgot my password", "cancel my plan"]
    items = [{"id": f"it-{i}", "text": f"{texts[i % 5]} (case {i})"} for i in range(30)]
    assert jobs_client.post("/v1/items", json=items, headers=admin).status_code == 201
    return admin


def finished(client, headers, job_id):  # type: ignore[no-untyped-def]
    body = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
    return body if body["state"] in {"succeeded", "failed", "cancelled"} else None


def test_a_job_labels_every_selected_item_once(jobs_client, editor, session_factory):
    r = jobs_client.post("/v1/jobs", json={"schema": "support-demo", "items": {},
                                           "strategy": "retrieval", "cutoff": 0.3},
                         headers=editor)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["state"] == "queued" and job["total"] == 30 and job["done"] == 0
    assert job["params"]["strategy"] == "retrieval" and job["params"]["cutoff"] == 0.3
    done = wait_for(lambda: finished(jobs_client, editor, job["id"]), 120, what="the job")
    assert done["state"] == "succeeded", done
    assert done["done"] == 30 and sum(done["counts"].values()) == 30
    assert done["items_per_second"] > 0 and done["eta_seconds"] is None
    assert done["judge_calls_per_item"] == 0  # retrieval asks no LLM
    assert job_annotation_counts(session_factory, job["id"]) == (30, 30, 30)
    item = jobs_client.get("/v1/items/it-3", headers=editor).json()
    assert item["labels"][0]["label"] == item["labels"][0]["trace"][0]["label"]
    listed = jobs_client.get("/v1/jobs", headers=editor).json()
    assert [j["id"] for j in listed] == [job["id"]]


def test_selection_by_status_and_reviewed_items_left_out(jobs_client, editor, session_factory):
    jobs_client.post("/v1/items/it-0/review", json={"schema": "support-demo",
                                                    "label": "billing"}, headers=editor)
    r = jobs_client.post("/v1/jobs", json={"schema": "support-demo", "items": {},
                                           "strategy": "retrieval"}, headers=editor)
    assert r.json()["total"] == 29  # the reviewed item is ground truth already
    wait_for(lambda: finished(jobs_client, editor, r.json()["id"]), 120, what="the job")
    again = jobs_client.post("/v1/jobs", json={"schema": "support-demo",
                                               "items": {"ids": ["it-0", "it-1"]},
                                               "include_reviewed": True,
                                               "strategy": "retrieval"}, headers=editor)
    assert again.json()["total"] == 2
    wait_for(lambda: finished(jobs_client, editor, again.json()["id"]), 120, what="the job")
    labels = jobs_client.get("/v1/items/it-0", headers=editor).json()["labels"][0]
    assert labels["status"] == "reviewed" and labels["label"] == "billing"  # person's label kept
    only_new = jobs_client.post("/v1/jobs", json={"schema": "support-demo",
                                                  "items": {"unlabelled": True}},
                                headers=editor)
    assert only_new.status_code == 422 and "matches no items" in only_new.json()["detail"]


def test_a_job_over_a_dataset(jobs_client, editor, session_factory):
    with session_factory() as session:
        items = session.scalars(select(Item).where(Item.external_id.in_(["it-1", "it-2"]))).all()
        dataset = Dataset(project_id=items[0].project_id, external_id="ds_test",
                          filename="x.csv", format="csv", text_column="text", rows=2, items=2)
        session.add(dataset)
        session.flush()
        session.add_all([DatasetItem(dataset_id=dataset.id, item_id=i.id) for i in items])
        session.commit()
    r = jobs_client.post("/v1/jobs", json={"schema": "support-demo", "dataset": "ds_test",
                                           "strategy": "retrieval"}, headers=editor)
    assert r.status_code == 202 and r.json()["total"] == 2
    done = wait_for(lambda: finished(jobs_client, editor, r.json()["id"]), 120, what="job")
    assert done["state"] == "succeeded"


def test_events_stream_progress_until_the_end(jobs_client, editor):
    job = jobs_client.post("/v1/jobs", json={"schema": "support-demo", "items": {},
                                             "strategy": "retrieval"}, headers=editor).json()
    events = []
    with jobs_client.stream("GET", f"/v1/jobs/{job['id']}/events", headers=editor) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: "):])))
                if name == "end":
                    break
    assert events[-1] == ("end", {"state": "succeeded"})
    progress = [data for name, data in events if name == "progress"]
    assert progress[-1]["done"] == 30
    assert [p["done"] for p in progress] == sorted(p["done"] for p in progress)


def test_cancel_a_queued_job(settings, session_factory):
    settings.jobs.inprocess_worker = False  # nothing runs it, so it stays queued
    with TestClient(create_app(settings)) as client:
        seed_labelled_items(session_factory, "acme", {"name": "s", "labels": [
            {"name": "a", "description": "A."}]}, [("x", "text", "a", 0.9, "accepted")])
        headers = bearer(new_key(session_factory, "acme", "editor"))
        job = client.post("/v1/jobs", json={"schema": "s", "items": {}}, headers=headers).json()
        r = client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        assert r.json()["finished_at"] is not None
        again = client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
        assert again.json()["state"] == "cancelled"


@pytest.mark.parametrize(("body", "status"), [
    ({"schema": "support-demo"}, 422),
    ({"schema": "support-demo", "items": {}, "dataset": "ds_x"}, 422),
    ({"schema": "support-demo", "items": {"ids": []}}, 422),
    ({"schema": "support-demo", "items": {"status": ["bogus"]}}, 422),
    ({"schema": "support-demo", "items": {}, "strategy": "magic"}, 422),
    ({"schema": "support-demo", "items": {}, "top_k": 0}, 422),
    ({"schema": "nope", "items": {}}, 404),
    ({"schema": "support-demo", "dataset": "ds_missing"}, 404),
    ({"schema": "support-demo", "items": {"ids": ["not-there"]}}, 422),
])
def test_bad_job_requests(jobs_client, editor, body, status):
    r = jobs_client.post("/v1/jobs", json=body, headers=editor)
    assert r.status_code == status, r.text
    assert r.json()["detail"]


def test_roles_and_isolation(jobs_client, editor, session_factory):
    viewer = bearer(new_key(session_factory, "acme", "viewer"))
    assert jobs_client.post("/v1/jobs", json={"schema": "support-demo", "items": {}},
                            headers=viewer).status_code == 403
    job = jobs_client.post("/v1/jobs", json={"schema": "support-demo", "items": {},
                                             "strategy": "retrieval"}, headers=editor).json()
    assert jobs_client.get(f"/v1/jobs/{job['id']}", headers=viewer).status_code == 200
    stranger = bearer(new_key(session_factory, "globex", "admin"))
    assert jobs_client.get(f"/v1/jobs/{job['id']}", headers=stranger).status_code == 404
    assert jobs_client.post(f"/v1/jobs/{job['id']}/cancel", headers=stranger).status_code == 404
    assert jobs_client.get("/v1/jobs", headers=stranger).json() == []


@pytest.mark.slow
def test_a_job_with_the_real_judge(jobs_client, editor, session_factory):
    r = jobs_client.post("/v1/jobs", json={"schema": "support-demo",
                                           "items": {"ids": ["it-0", "it-1", "it-2"]},
                                           "top_k": 2, "strategy": "sequential"},
                         headers=editor)
    done = wait_for(lambda: finished(jobs_client, editor, r.json()["id"]), 300, what="job")
    assert done["state"] == "succeeded" and done["done"] == 3
    assert 1 <= done["judge_calls_per_item"] <= 2
    item = jobs_client.get("/v1/items/it-1", headers=editor).json()["labels"][0]
    assert item["model_id"].startswith("llama.cpp:")
    assert any(step["p_yes"] is not None for step in item["trace"])


def test_a_long_id_list_is_resolved_in_slices(jobs_client, editor):
    ids = [f"it-{i}" for i in range(30)] + [f"unknown-{i}" for i in range(2000)]
    r = jobs_client.post("/v1/jobs", json={"schema": "support-demo", "items": {"ids": ids},
                                           "strategy": "retrieval"}, headers=editor)
    assert r.status_code == 202, r.text
    assert r.json()["total"] == 30  # ids that do not exist are not items to label
