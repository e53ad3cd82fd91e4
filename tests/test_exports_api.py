"""Exports: JSONL, CSV, Parquet and Label Studio tasks, streamed page by page; filters;
isolation (both databases). Exports by job (history kept) are in test_exports_by_job.py."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from app.exports import service as exports_service
from app.items.models import Item
from tests.helpers import bearer, demo_schema, new_key, seed_labelled_items

ROWS = [
    ("auto", "fine", "label_0", 0.95, "accepted"),
    ("low", "unsure", "label_1", 0.40, "needs_review"),
    ("none", "no idea", None, 0.20, "no_match"),
    ("rev", "to review", "label_2", 0.60, "needs_review"),
]


@pytest.fixture
def viewer(client, session_factory) -> dict[str, str]:
    seed_labelled_items(session_factory, "acme", demo_schema(n_labels=4), ROWS)
    with session_factory() as session:
        session.execute(update(Item).where(Item.external_id == "auto")
                        .values(meta={"team": "billing", "n": 3}))
        session.commit()
    reviewer = bearer(new_key(session_factory, "acme", "reviewer"))
    with session_factory() as session:
        from app.auth.models import ApiKey

        session.execute(update(ApiKey).where(ApiKey.role == "reviewer").values(name="alice"))
        session.commit()
    r = client.post("/v1/items/rev/review", json={"label": "label_1"}, headers=reviewer)
    assert r.status_code == 200, r.text
    return bearer(new_key(session_factory, "acme", "viewer"))


def export(client, headers, **params):
    params.setdefault("schema", "support")
    params = {k: v for k, v in params.items() if v is not None}
    return client.get("/v1/exports", params=params, headers=headers)


def jsonl(response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines()]


def test_jsonl_carries_label_status_source_and_metadata(client, viewer):
    r = export(client, viewer)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert 'filename="support.jsonl"' in r.headers["content-disposition"]
    rows = {row["id"]: row for row in jsonl(r)}
    assert list(rows) == ["auto", "low", "none", "rev"]  # item order
    assert r.headers["x-export-decision"] == "latest"
    assert set(rows["auto"]) == {"id", "text", "label", "labels", "confidence", "status",
                                 "source", "job", "decision", "schema", "schema_version",
                                 "metadata", "annotated_at"}
    assert rows["auto"] == {**rows["auto"], "text": "fine", "label": "label_0",
                            "labels": ["label_0"], "confidence": 0.95, "status": "accepted",
                            "source": "model", "job": None, "decision": "latest",
                            "schema": "support", "schema_version": 1,
                            "metadata": {"team": "billing", "n": 3}}
    assert rows["none"]["label"] is None and rows["none"]["labels"] == []
    assert rows["rev"]["label"] == "label_1" and rows["rev"]["status"] == "reviewed"
    assert rows["rev"]["source"] == "alice" and rows["rev"]["confidence"] == 1.0
    assert rows["rev"]["decision"] == "reviewed"
    assert datetime.fromisoformat(rows["rev"]["annotated_at"]) >= \
        datetime.fromisoformat(rows["auto"]["annotated_at"])


def test_jsonl_loads_with_hugging_face_datasets(client, viewer, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "support.jsonl"
    path.write_bytes(export(client, viewer).content)
    loaded = datasets.load_dataset("json", data_files=str(path), split="train",
                                   cache_dir=str(tmp_path / "hf-cache"))
    assert loaded.num_rows == 4
    assert loaded["id"] == ["auto", "low", "none", "rev"]
    assert loaded["label"] == ["label_0", "label_1", None, "label_1"]
    assert loaded["status"] == ["accepted", "needs_review", "no_match", "reviewed"]
    assert loaded[0]["metadata"]["team"] == "billing"


def test_status_filter(client, viewer):
    assert [r["id"] for r in jsonl(export(client, viewer, status="needs_review"))] == ["low"]
    both = export(client, viewer, status="accepted,reviewed")
    assert [r["id"] for r in jsonl(both)] == ["auto", "rev"]


@pytest.mark.parametrize(("params", "status"), [
    ({"status": "done"}, 422),
    ({"status": ","}, 422),
    ({"format": "xlsx"}, 422),
    ({"schema": "nope"}, 404),
    ({"dataset": "ds_nope"}, 404),
    ({"job": "job_nope"}, 404),
    ({"decision": "job"}, 422),
    ({"decision": "newest"}, 422),
    ({"schema": None}, 422),
])
def test_bad_parameters(client, viewer, params, status):
    r = export(client, viewer, **params)
    assert r.status_code == status, r.text
    assert set(r.json()) >= {"error", "detail"}


def test_csv_has_a_column_per_metadata_field_and_readable_labels(client, viewer,
                                                                 session_factory):
    with session_factory() as session:
        session.execute(update(Item).where(Item.external_id == "low")
                        .values(meta={"team": "sales", "where": {"city": "Oslo"},
                                      "text": "a field named like a column", "tags": [1, 2]}))
        session.commit()
    r = export(client, viewer, format="csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == ["id", "text", "label", "labels", "confidence", "status", "source",
                             "job", "decision", "schema", "schema_version", "annotated_at",
                             "n", "tags", "team", "metadata.text", "where.city"]
    by_id = {row["id"]: row for row in rows}
    assert (by_id["auto"]["team"], by_id["auto"]["n"], by_id["auto"]["where.city"]) == \
        ("billing", "3", "")
    assert (by_id["low"]["team"], by_id["low"]["where.city"], by_id["low"]["text"],
            by_id["low"]["metadata.text"], by_id["low"]["tags"]) == \
        ("sales", "Oslo", "unsure", "a field named like a column", "[1,2]")
    assert by_id["auto"]["labels"] == "label_0" and by_id["none"]["labels"] == ""
    assert float(by_id["auto"]["confidence"]) == 0.95
    assert by_id["none"]["label"] == "" and by_id["rev"]["source"] == "alice"
    assert by_id["rev"]["decision"] == "reviewed" and by_id["auto"]["decision"] == "latest"


def _load_parquet(content: bytes, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "export.parquet"
    path.write_bytes(content)
    return datasets.load_dataset("parquet", data_files=str(path), split="train",
                                 cache_dir=str(tmp_path / "hf-cache"))


def test_parquet_loads_with_named_classes_in_hugging_face_datasets(client, viewer, tmp_path,
                                                                   monkeypatch):
    r = export(client, viewer, format="parquet")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    assert 'filename="support.parquet"' in r.headers["content-disposition"]
    loaded = _load_parquet(r.content, tmp_path, monkeypatch)
    label = loaded.features["label"]
    assert type(label).__name__ == "ClassLabel"
    assert label.names == ["label_0", "label_1", "label_2", "label_3"]
    assert loaded["id"] == ["auto", "low", "none", "rev"]
    assert [None if i is None else label.int2str(i) for i in loaded["label"]] == \
        ["label_0", "label_1", None, "label_1"]
    assert [[label.int2str(i) for i in x] for x in loaded["labels"]] == \
        [["label_0"], ["label_1"], [], ["label_1"]]
    assert loaded["status"] == ["accepted", "needs_review", "no_match", "reviewed"]
    assert loaded["decision"] == ["latest", "latest", "latest", "reviewed"]
    assert loaded["source"][3] == "alice" and loaded["confidence"][0] == 0.95
    assert loaded["team"] == ["billing", None, None, None] and loaded["n"][0] == 3
    assert loaded[3]["annotated_at"].tzinfo is not None
    # the file says which schema and which decision
    import pyarrow.parquet as pq

    meta = json.loads(pq.read_schema(io.BytesIO(r.content)).metadata[b"rac"])
    assert meta == {"schema": "support", "decision": "latest",
                    "label_names": ["label_0", "label_1", "label_2", "label_3"],
                    "multi_label": False}


def test_parquet_of_a_multi_label_schema_is_a_sequence_of_class_labels(
        client, session_factory, tmp_path, monkeypatch):
    seed_labelled_items(session_factory, "multi", demo_schema(n_labels=3, multi_label=True),
                        [("m1", "one", "label_0", 0.9, "accepted"),
                         ("m2", "two", "label_1", 0.4, "needs_review")])
    reviewer = bearer(new_key(session_factory, "multi", "reviewer"))
    r = client.post("/v1/items/m2/review", json={"labels": ["label_2", "label_0"]},
                    headers=reviewer)
    assert r.status_code == 200, r.text
    viewer = bearer(new_key(session_factory, "multi", "viewer"))
    loaded = _load_parquet(export(client, viewer, format="parquet").content, tmp_path,
                           monkeypatch)
    labels = loaded.features["labels"]
    inner = getattr(labels, "feature", None)
    assert type(inner).__name__ == "ClassLabel", labels
    assert inner.names == ["label_0", "label_1", "label_2"]
    assert [[inner.int2str(i) for i in x] for x in loaded["labels"]] == \
        [["label_0"], ["label_2", "label_0"]]


def test_label_studio_tasks(client, viewer):
    r = export(client, viewer, format="label-studio")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    tasks = {t["data"]["id"]: t for t in r.json()}

    def choices(label: str) -> list[dict]:
        return [{"from_name": "label", "to_name": "text", "type": "choices",
                 "value": {"choices": [label]}}]

    # metadata fields sit in `data` beside the text and id
    assert tasks["auto"] == {"data": {"text": "fine", "id": "auto", "team": "billing", "n": 3},
                             "predictions": [{"model_version": "test-model", "score": 0.95,
                                              "result": choices("label_0")}]}
    assert "predictions" not in tasks["none"] and "annotations" not in tasks["none"]
    # a reviewed item: the person's label as an annotation, the model's as a prediction
    (annotation,) = tasks["rev"]["annotations"]
    assert annotation["result"] == choices("label_1") and annotation["ground_truth"] is True
    assert annotation["created_username"] == "alice"
    assert tasks["rev"]["meta"] == {"reviewed_by": "alice",
                                    "reviewed_at": annotation["created_at"]}
    assert datetime.fromisoformat(annotation["created_at"]) >= datetime(2026, 1, 1, tzinfo=UTC)
    assert tasks["rev"]["predictions"][0]["result"] == choices("label_2")
    assert tasks["rev"]["predictions"][0]["score"] == 0.6
    subset = export(client, viewer, format="label-studio", status="no_match,reviewed")
    assert [t["data"]["id"] for t in subset.json()] == ["none", "rev"]


def test_label_studio_config_fits_the_exported_tasks(client, viewer):
    from app.label_studio.labeling_config import parse

    r = client.get("/v1/exports/label-studio-config", params={"schema": "support"},
                   headers=viewer)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    config = parse(r.text)
    assert (config.from_name, config.to_name, config.data_field) == ("label", "text", "text")
    assert [c.value for c in config.choices] == [f"label_{i}" for i in range(4)]
    assert config.choices[0].hint == "Description of label 0."
    assert config.multiple is False
    missing = client.get("/v1/exports/label-studio-config", params={"schema": "nope"},
                         headers=viewer)
    assert missing.status_code == 404


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "label-studio"])
def test_pages_join_into_one_document(client, viewer, monkeypatch, fmt):
    monkeypatch.setattr(exports_service, "PAGE_ROWS", 3)
    r = export(client, viewer, format=fmt)

    def ids(response) -> list[str]:  # type: ignore[no-untyped-def]
        if fmt == "jsonl":
            return [row["id"] for row in jsonl(response)]
        if fmt == "csv":
            return [row["id"] for row in csv.DictReader(io.StringIO(response.text))]
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(io.BytesIO(response.content)).column("id").to_pylist()
        return [t["data"]["id"] for t in json.loads(response.text)]

    assert ids(r) == ["auto", "low", "none", "rev"]
    monkeypatch.setattr(exports_service, "PAGE_ROWS", 1)
    again = export(client, viewer, format=fmt)
    if fmt == "parquet":  # one row group per page: the same table in more groups
        import pyarrow.parquet as pq

        tables = [pq.read_table(io.BytesIO(x.content)) for x in (r, again)]
        assert tables[0].equals(tables[1])
        assert pq.ParquetFile(io.BytesIO(again.content)).metadata.num_row_groups == 4
    else:
        assert again.text == r.text


def test_an_export_larger_than_a_page_streams_every_row_once(client, session_factory):
    n = exports_service.PAGE_ROWS * 2 + 50
    rows = [(f"i{i:05d}", f"text {i}", "label_0", 0.9, "accepted") for i in range(n)]
    seed_labelled_items(session_factory, "big", demo_schema(), rows)
    headers = bearer(new_key(session_factory, "big", "viewer"))
    with client.stream("GET", "/v1/exports", params={"schema": "support"},
                       headers=headers) as r:
        assert r.status_code == 200
        chunks = list(r.iter_bytes())
    lines = b"".join(chunks).decode().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [r[0] for r in rows]
    empty = client.get("/v1/exports", params={"schema": "support", "format": "label-studio",
                                              "status": "reviewed"}, headers=headers)
    assert empty.json() == []


def test_dataset_filter(client, viewer, session_factory):
    editor = bearer(new_key(session_factory, "acme", "editor"))
    up = client.post("/v1/datasets", files={"file": ("d.csv", b"id,text\nlow,unsure\nrev,to "
                                                     b"review\nnew,never labelled\n")},
                     data={"text_column": "text", "id_column": "id"}, headers=editor)
    assert up.status_code == 201 and up.json()["created"] == 1
    rows = jsonl(export(client, viewer, dataset=up.json()["id"]))
    assert [r["id"] for r in rows] == ["low", "rev"]  # unlabelled items are not exported


def test_roles_and_project_isolation(client, viewer, session_factory):
    assert export(client, {}).status_code == 401
    seed_labelled_items(session_factory, "globex", demo_schema(),
                        [("g1", "globex text", "label_1", 0.9, "accepted")])
    other = bearer(new_key(session_factory, "globex", "viewer"))
    assert [r["id"] for r in jsonl(export(client, other))] == ["g1"]
    assert [r["id"] for r in jsonl(export(client, viewer))] == ["auto", "low", "none", "rev"]
    lonely = bearer(new_key(session_factory, "initech", "viewer"))
    assert export(client, lonely).status_code == 404
