"""The browser's dataset upload answers with its progress: JSON lines of rows read and bytes of the
file read after each stored batch, then the dataset; a file refused before reading is a 4xx JSON
error, one found bad while reading ends the stream with its error. Both databases."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from app.datasets import service as dataset_service
from app.datasets.models import Dataset
from app.items.models import Item
from tests.helpers import new_key, page_sign_in
from tests.test_review_page import PAGE_HEADERS


def _signed_in(client, factory, role="editor"):  # type: ignore[no-untyped-def]
    r = page_sign_in(client, new_key(factory, "acme", role))
    assert r.status_code == 303, r.text


def _post(client, name: str, body: bytes, **fields: str):  # type: ignore[no-untyped-def]
    return client.post("/review/api/datasets", headers=PAGE_HEADERS,
                       files={"file": (name, body)}, data={"text_column": "text", **fields})


def test_the_upload_reports_rows_read_after_each_batch(client, session_factory, monkeypatch):
    monkeypatch.setattr(dataset_service, "BATCH_ROWS", 100)
    _signed_in(client, session_factory)
    lines = ["id,text"] + [f"r{i},message number {i} about a parcel" for i in range(350)]
    lines.append("bad,")  # no text: a bad row
    body = ("\n".join(lines) + "\n").encode()
    r = _post(client, "rows.csv", body, id_column="id")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    events = [json.loads(line) for line in r.text.splitlines()]
    progress, outcome = events[:-1], events[-1]
    assert [e["rows"] for e in progress] == [0, 100, 200, 300]
    assert all(e["size"] == len(body) for e in progress)
    read = [e["read"] for e in progress]
    assert read == sorted(read) and 0 < read[1] < read[3] <= len(body)
    done = outcome["done"]
    assert (done["rows"], done["items"], done["created"], done["bad_rows"]) == (351, 350, 350, 1)
    assert done["errors"] == [{"row": 351, "reason": done["errors"][0]["reason"]}]
    with session_factory() as session:
        dataset = session.scalars(select(Dataset)).one()
        assert (dataset.external_id, dataset.rows, dataset.items) == (done["id"], 351, 350)
        assert session.scalar(select(func.count()).select_from(Item)) == 350
    row = client.get("/review/datasets").text.split(f'data-dataset="{done["id"]}"')[1]
    assert "<td>complete</td>" in row.split("</tr>")[0]


def test_a_file_refused_before_reading_is_a_json_error(client, session_factory):
    _signed_in(client, session_factory)
    r = _post(client, "rows.csv", b"id,body\n1,hello\n")
    assert r.status_code == 422 and "text" in r.json()["detail"], r.text
    r = _post(client, "rows.xls", b"id,text\n1,hello\n")
    assert r.status_code == 422 and "cannot tell the format" in r.json()["detail"]
    r = client.post("/review/api/datasets", headers=PAGE_HEADERS, json={"text_column": "text"})
    assert r.status_code == 415
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Dataset)) == 0


def test_a_file_found_bad_while_reading_ends_with_its_error(client, session_factory):
    _signed_in(client, session_factory)
    # JSONL declares no columns: that no record has the text field shows only at the end
    r = _post(client, "rows.jsonl", b'{"body": "hello"}\n{"body": "there"}\n')
    assert r.status_code == 200
    events = [json.loads(line) for line in r.text.splitlines()]
    assert events[0]["rows"] == 0
    assert events[-1]["status"] == 422 and "text" in events[-1]["error"], events
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Dataset)) == 0


def test_uploading_needs_an_editor(client, session_factory):
    _signed_in(client, session_factory, "reviewer")
    r = _post(client, "rows.csv", b"id,text\n1,hello\n")
    assert r.status_code == 403 and "editor role" in r.json()["detail"]
