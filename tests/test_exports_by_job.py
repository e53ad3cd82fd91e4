"""Exports by job: two real jobs (bundled embedder, in-process worker) over the same items; the
second never erases the first's labels, each export says which decision it took (both
databases)."""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.helpers import SCHEMAS_DIR, bearer, new_key, wait_for

TEXTS = ["I was charged twice", "the app crashes", "please add dark mode",
         "I forgot my password", "cancel my plan"]


@pytest.fixture
def jobs_client(settings):
    settings.jobs.chunk_size = 4
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def admin(jobs_client, session_factory) -> dict[str, str]:
    headers = bearer(new_key(session_factory, "acme", "admin"))
    r = jobs_client.post("/v1/schemas", content=(SCHEMAS_DIR / "demo.yaml").read_bytes(),
                         headers={**headers, "Content-Type": "application/yaml"})
    assert r.status_code in (200, 201), r.text
    items = [{"id": f"it-{i}", "text": f"{TEXTS[i % 5]} (case {i})"} for i in range(10)]
    assert jobs_client.post("/v1/items", json=items, headers=headers).status_code == 201
    return headers


def run_job(client, headers, **params) -> str:  # type: ignore[no-untyped-def]
    r = client.post("/v1/jobs", json={"schema": "support-demo", "strategy": "retrieval",
                                      **params}, headers=headers)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    done = wait_for(lambda: (lambda b: b if b["state"] in {"succeeded", "failed"} else None)(
        client.get(f"/v1/jobs/{job_id}", headers=headers).json()), 300, what="the job")
    assert done["state"] == "succeeded", done
    return job_id


def export(client, headers, **params):  # type: ignore[no-untyped-def]
    r = client.get("/v1/exports", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r


def rows(response) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {x["id"]: x for x in map(json.loads, response.text.splitlines())}


def test_a_second_job_never_erases_the_first_jobs_labels(jobs_client, admin):
    # the same items twice: everything accepted, then everything sent to review
    first = run_job(jobs_client, admin, items={}, cutoff=0.0)
    second = run_job(jobs_client, admin, items={"ids": ["it-0", "it-1", "it-2"]}, cutoff=1.0)
    jobs_client.post("/v1/items/it-1/review", json={"schema": "support-demo",
                                                    "label": "cancellation"}, headers=admin)

    by_first = export(jobs_client, admin, job=first)
    assert by_first.headers["x-export-decision"] == f"job {first}"
    assert f'filename="support-demo.{first}.jsonl"' in by_first.headers["content-disposition"]
    one = rows(by_first)
    assert sorted(one) == [f"it-{i}" for i in range(10)]
    assert {x["status"] for x in one.values()} == {"accepted"}
    assert {(x["job"], x["decision"], x["source"]) for x in one.values()} == \
        {(first, "job", "model")}

    two = rows(export(jobs_client, admin, job=second, schema="support-demo"))
    assert sorted(two) == ["it-0", "it-1", "it-2"]
    assert {x["status"] for x in two.values()} == {"needs_review"}
    assert {x["job"] for x in two.values()} == {second}
    # same items, same retrieval: the same label, only the decision about it differs
    assert all(two[k]["label"] == one[k]["label"] for k in two)

    latest = export(jobs_client, admin, schema="support-demo")
    assert latest.headers["x-export-decision"] == "latest"
    now = rows(latest)
    assert (now["it-0"]["status"], now["it-0"]["job"], now["it-0"]["decision"]) == \
        ("needs_review", second, "latest")
    assert (now["it-1"]["label"], now["it-1"]["decision"], now["it-1"]["job"]) == \
        ("cancellation", "reviewed", None)
    assert (now["it-5"]["status"], now["it-5"]["job"]) == ("accepted", first)

    # the first job's items with their current labels, reviews included
    current = export(jobs_client, admin, job=first, decision="latest")
    assert current.headers["x-export-decision"] == f"latest, items of job {first}"
    assert rows(current) == now
    # filters apply to the decision exported
    assert sorted(rows(export(jobs_client, admin, job=second, status="needs_review"))) == \
        ["it-0", "it-1", "it-2"]
    assert rows(export(jobs_client, admin, job=first, status="needs_review")) == {}


def test_a_jobs_parquet_export_carries_its_decision(jobs_client, admin):
    pq = pytest.importorskip("pyarrow.parquet")
    first = run_job(jobs_client, admin, items={"ids": ["it-3", "it-4"]}, cutoff=0.0)
    r = export(jobs_client, admin, job=first, format="parquet")
    table = pq.read_table(io.BytesIO(r.content))
    assert table.column("id").to_pylist() == ["it-3", "it-4"]
    assert table.column("job").to_pylist() == [first, first]
    meta = json.loads(table.schema.metadata[b"rac"])
    assert meta["decision"] == f"job {first}" and meta["schema"] == "support-demo"


def test_a_job_of_another_schema_is_refused(jobs_client, admin):
    first = run_job(jobs_client, admin, items={"ids": ["it-0"]}, cutoff=0.0)
    doc = (SCHEMAS_DIR / "demo.yaml").read_text().replace("name: support-demo",
                                                          "name: other", 1)
    jobs_client.post("/v1/schemas", content=doc.encode(),
                     headers={**admin, "Content-Type": "application/yaml"})
    r = jobs_client.get("/v1/exports", params={"schema": "other", "job": first},
                        headers=admin)
    assert r.status_code == 422 and "another schema" in r.json()["detail"]
