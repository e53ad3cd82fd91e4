"""Dataset uploads: CSV, JSONL and Parquet, streamed in batches; bad rows reported, good rows
stored; idempotent re-uploads; limits and isolation (both databases)."""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from app.datasets import repository as datasets_repository
from app.datasets import service as datasets_service
from app.datasets import upload as upload_module
from app.items.api import MAX_TEXT_CHARS
from tests.helpers import bearer, new_key


@pytest.fixture
def editor(session_factory) -> dict[str, str]:
    return bearer(new_key(session_factory, "acme", "editor"))


def upload(client: TestClient, headers: dict[str, str], filename: str, content: bytes,
           **fields: str):
    fields.setdefault("text_column", "text")
    return client.post("/v1/datasets", files={"file": (filename, content)}, data=fields,
                       headers=headers)


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def parquet_bytes(table: pa.Table, row_group_size: int | None = None) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=row_group_size)
    return buffer.getvalue()


def test_csv_with_an_id_column_and_metadata(client, editor):
    r = upload(client, editor, "tickets.csv",
               csv_bytes("ticket,text,source,priority",
                         "t-1,My card was charged twice,crm,high",
                         't-2,"Where is my parcel, please?",email,',
                         't-3,"A line\nbreak inside",chat,low'),
               id_column="ticket")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("ds_")
    assert (body["rows"], body["items"], body["bad_rows"], body["created"]) == (3, 3, 0, 3)
    assert body["errors"] == [] and body["format"] == "csv" and body["filename"] == "tickets.csv"
    item = client.get("/v1/items/t-2", headers=editor).json()
    assert item["text"] == "Where is my parcel, please?"
    assert item["metadata"] == {"source": "email", "priority": ""}
    assert client.get("/v1/items/t-3", headers=editor).json()["text"] == "A line\nbreak inside"
    got = client.get(f"/v1/datasets/{body['id']}", headers=editor).json()
    assert got == {k: v for k, v in body.items() if k != "created"}


@pytest.mark.parametrize(("filename", "content"), [
    ("t.csv", csv_bytes("id,text,channel", "a-1,My card has not arrived,app")),
    ("t.jsonl", b'{"id": "a-1", "text": "My card has not arrived", "channel": "app"}\n'),
    ("t.parquet", parquet_bytes(pa.table({"text": ["My card has not arrived"],
                                          "id": ["a-1"], "channel": ["app"]}))),
])
def test_a_column_named_id_holds_the_ids_without_being_named(client, editor, filename,
                                                             content):
    r = upload(client, editor, filename, content)
    assert r.status_code == 201, r.text
    assert r.json()["id_column"] == "id"
    item = client.get("/v1/items/a-1", headers=editor)
    assert item.status_code == 200, item.text
    assert item.json()["metadata"] == {"channel": "app"}


def test_jsonl_without_an_id_column_is_idempotent_on_reupload(client, editor):
    lines = [{"text": "first message", "meta": {"lang": "en", "tags": ["a", "b"]}, "n": 1},
             {"text": "second message", "n": 2.5},
             {"text": "first message", "n": 3}]  # the same text twice: one item
    content = "".join(json.dumps(x) + "\n" for x in lines).encode()
    first = upload(client, editor, "data.jsonl", content)
    assert first.status_code == 201, first.text
    assert (first.json()["rows"], first.json()["items"], first.json()["created"]) == (3, 3, 2)
    again = upload(client, editor, "data.jsonl", content)
    assert again.status_code == 201
    assert (again.json()["items"], again.json()["created"]) == (3, 0)
    assert again.json()["id"] != first.json()["id"]  # a new dataset of the same items
    page = client.get("/v1/items", headers=editor).json()["items"]
    assert sorted(i["text"] for i in page) == ["first message", "second message"]
    first_item = next(i for i in page if i["text"] == "first message")
    assert first_item["id"].startswith("txt_")
    assert first_item["metadata"] == {"meta": {"lang": "en", "tags": ["a", "b"]}, "n": 1}
    listed = client.get("/v1/datasets", headers=editor).json()
    assert [d["id"] for d in listed["items"]] == [again.json()["id"], first.json()["id"]]
    assert "errors" not in listed["items"][0]


def test_parquet_with_typed_columns(client, editor):
    table = pa.table({
        "id": pa.array([10, 11, 12], pa.int64()),
        "body": ["refund please", "card lost", None],
        "score": [0.5, float("nan"), 1.0],
        "seen": pa.array([datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)] * 3, pa.timestamp("s", "UTC")),
        "tags": [["x"], [], ["y", "z"]],
    })
    r = upload(client, editor, "export.parquet", parquet_bytes(table, row_group_size=2),
               text_column="body", id_column="id")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["rows"], body["items"], body["bad_rows"]) == (3, 2, 1)
    assert body["errors"] == [{"row": 3, "reason": "no text: 'body' is missing or empty"}]
    item = client.get("/v1/items/11", headers=editor).json()
    assert item["text"] == "card lost"
    assert item["metadata"]["score"] is None  # NaN is not JSON; PostgreSQL refuses it
    assert item["metadata"]["seen"].startswith("2026-01-02T03:04:05")
    assert item["metadata"]["tags"] == []


def test_bad_rows_are_reported_with_row_numbers_and_good_rows_are_stored(client, editor):
    client.post("/v1/items", json={"id": "taken", "text": "the stored text"}, headers=editor)
    long_text = "x" * (MAX_TEXT_CHARS + 1)
    content = csv_bytes(
        "id,text,extra",
        "ok-1,fine,a",                  # 1
        "blank,   ,b",                  # 2 blank text
        f"long,{long_text},c",          # 3 too long
        "has space,bad id,d",           # 4 bad id
        "short,too few fields",         # 5
        ",no id,e",                     # 6
        "taken,another text,f",         # 7 exists with a different text
        "ok-2,second,g",                # 8
        "ok-2,second but different,h",  # 9 same id, other text, same file
        "ok-2,second,i",                # 10 same id and text: fine
    )
    r = upload(client, editor, "rows.csv", content, id_column="id")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["rows"], body["items"], body["bad_rows"], body["created"]) == (10, 3, 7, 2)
    reasons = {e["row"]: e["reason"] for e in body["errors"]}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 9]
    assert "blank" in reasons[2]
    assert "at most 20000 characters" in reasons[3]
    assert "only letters, digits" in reasons[4]
    assert "has 2 fields; the header has 3" in reasons[5]
    assert "no id" in reasons[6]
    assert "exists with a different text" in reasons[7]
    assert "different text" in reasons[9]
    assert client.get("/v1/items/ok-1", headers=editor).json()["metadata"] == {"extra": "a"}
    assert client.get("/v1/items/taken", headers=editor).json()["text"] == "the stored text"
    assert client.get("/v1/items/ok-2", headers=editor).json()["text"] == "second"


def test_bad_jsonl_lines(client, editor):
    content = b"\n".join([
        b'{"text": "good one", "id": "j1"}',
        b'{"text": "broken',
        b"[1, 2, 3]",
        b"",                                   # blank lines are skipped, still counted
        b'{"id": "j2"}',
        b'{"text": 42, "id": "j3"}',
        b'{"text": "nul \\u0000 inside", "id": "j4"}',
        b'{"text": "bad bytes \xff\xfe", "id": "j5"}',
        b'{"text": "good two", "id": 7}',
    ]) + b"\n"
    r = upload(client, editor, "lines.jsonl", content, id_column="id")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["rows"], body["items"], body["bad_rows"]) == (8, 2, 6)
    reasons = {e["row"]: e["reason"] for e in body["errors"]}
    assert sorted(reasons) == [2, 3, 5, 6, 7, 8]
    assert reasons[2].startswith("malformed JSON")
    assert "not an object" in reasons[3]
    assert "no text" in reasons[5]
    assert "is a number, not a string" in reasons[6]
    assert "NUL" in reasons[7]
    assert "not UTF-8" in reasons[8]
    assert client.get("/v1/items/7", headers=editor).json()["text"] == "good two"


def test_an_unterminated_quote_is_one_bad_row_and_the_rest_of_the_file_is_read(client, editor):
    """A quote that never closes used to swallow every later line into one item's text."""
    content = csv_bytes(
        "id,text,group",
        "q1,first message,a",                        # row 1
        'q2,"this quote never closes,b',            # row 2: the quote opens and never ends
        "q3,third message,c",                        # row 3
        'q4,"a quoted field',                        # row 4: spans two lines, correctly closed
        'on two lines",d',
        'q5,"x"y,e',                                 # row 5: text after a closing quote
        "q6,last message,f",                         # row 6
    )
    r = upload(client, editor, "quotes.csv", content, id_column="id")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["rows"], body["items"], body["bad_rows"]) == (6, 4, 2), body
    reasons = {e["row"]: e["reason"] for e in body["errors"]}
    assert sorted(reasons) == [2, 5]
    assert "line 3" in reasons[2]  # the file's line (the header is line 1)
    assert "line 7" in reasons[5]
    assert client.get("/v1/items/q3", headers=editor).json()["text"] == "third message"
    assert client.get("/v1/items/q4", headers=editor).json()["text"] == \
        "a quoted field\non two lines"
    assert client.get("/v1/items/q6", headers=editor).json()["metadata"] == {"group": "f"}
    assert client.get("/v1/items/q2", headers=editor).status_code == 404


def test_an_unterminated_quote_at_the_end_of_the_file_is_reported(client, editor):
    content = csv_bytes("text", "fine", '"never closes', "also fine")
    body = upload(client, editor, "end.csv", content).json()
    assert (body["rows"], body["items"], body["bad_rows"]) == (3, 2, 1), body
    assert body["errors"] == [{"row": 2, "reason": "unterminated quote: the quoted field on "
                                                   "line 3 never closes"}]


def test_an_unterminated_quote_in_a_large_file_loses_one_row(client, editor, monkeypatch):
    """Past 1 MiB the open quote is a record too long to be one; the next line reads on."""
    monkeypatch.setattr(datasets_service, "BATCH_ROWS", 2_000)
    rows = [f"r{i},message number {i} " + "z" * 40 for i in range(30_000)]  # ~2 MB
    rows[10] = 'r10,"opens here'
    body = upload(client, editor, "big.csv", csv_bytes("id,text", *rows), id_column="id").json()
    assert (body["rows"], body["items"], body["bad_rows"]) == (30_000, 29_999, 1), body
    assert body["errors"][0]["row"] == 11
    assert "longer than 1048576 bytes" in body["errors"][0]["reason"]
    assert client.get("/v1/items/r11", headers=editor).status_code == 200


def test_a_file_of_unterminated_quotes_is_refused(client, editor, monkeypatch):
    """Each broken record is read again from its second line; the re-reading is bounded."""
    from app.datasets import readers

    monkeypatch.setattr(readers, "MAX_REREAD_BYTES", 100_000)
    plain = [f"plain line {i}" for i in range(4_000)]  # ~60 KB between two quotes
    content = csv_bytes("text", *(['"open'] + plain) * 3)
    r = upload(client, editor, "quotes.csv", content)
    assert r.status_code == 422 and "never end" in r.json()["detail"], r.text
    assert client.get("/v1/datasets", headers=editor).json()["items"] == []


@pytest.mark.parametrize("depth", [600, 100_000])
def test_a_deeply_nested_jsonl_line_is_a_bad_row(client, editor, depth):
    nested = "[" * depth + "]" * depth
    content = b"\n".join([b'{"text": "before"}',
                          f'{{"text": "deep", "meta": {nested}}}'.encode(),
                          b'{"text": "after"}']) + b"\n"
    r = upload(client, editor, "deep.jsonl", content)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["rows"], body["items"], body["bad_rows"]) == (3, 2, 1)
    assert body["errors"][0]["row"] == 2
    reason = body["errors"][0]["reason"]
    if depth == 600:  # parsed by json, refused by the depth limit (it used to crash the upload)
        assert reason == "metadata nests 601 levels deep; the limit is 32"
    else:  # past the JSON parser's own recursion limit
        assert reason.startswith("malformed JSON")
    items = client.get("/v1/items", headers=editor).json()["items"]
    assert sorted(i["text"] for i in items) == ["after", "before"]


def test_a_jsonl_number_beyond_pythons_digit_limit_is_a_bad_row(client, editor):
    content = b"\n".join([b'{"text": "before"}', b'{"text": "huge", "n": ' + b"9" * 5000 + b"}",
                          b'{"text": "after"}']) + b"\n"
    r = upload(client, editor, "huge.jsonl", content)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["rows"], body["items"], body["bad_rows"]) == (3, 2, 1)
    assert body["errors"][0]["row"] == 2
    assert body["errors"][0]["reason"].startswith("malformed JSON")


def test_conflicts_across_batches_of_one_file(client, editor, monkeypatch):
    monkeypatch.setattr(datasets_service, "BATCH_ROWS", 2)
    content = csv_bytes("id,text", "a,one", "b,two", "c,three", "a,one", "a,ONE", "d,four")
    body = upload(client, editor, "batches.csv", content, id_column="id").json()
    assert (body["rows"], body["items"], body["bad_rows"], body["created"]) == (6, 5, 1, 4)
    assert body["errors"] == [{"row": 5, "reason": "id 'a' exists with a different text"}]


def test_only_the_first_errors_are_kept_but_all_are_counted(client, editor, monkeypatch):
    monkeypatch.setattr(datasets_service, "MAX_KEPT_ERRORS", 3)
    content = csv_bytes("text,n", *(f",{i}" for i in range(5)), "fine,5")
    body = upload(client, editor, "blank.csv", content).json()
    assert (body["rows"], body["items"], body["bad_rows"]) == (6, 1, 5)
    assert [e["row"] for e in body["errors"]] == [1, 2, 3]


def test_every_row_of_a_large_file_becomes_a_member(client, editor, session_factory):
    n = 12_345  # three batches
    content = csv_bytes("id,text,group", *(f"r{i},message number {i},{i % 7}" for i in range(n)))
    body = upload(client, editor, "big.csv", content, id_column="id").json()
    assert (body["rows"], body["items"], body["created"], body["bad_rows"]) == (n, n, n, 0)
    with session_factory() as session:
        dataset = datasets_repository.get_dataset(session, _project_id(session), body["id"])
        members, after = 0, 0
        while page := datasets_repository.member_ids(session, dataset.id, after=after,
                                                     limit=5000):
            members += len(page)
            after = page[-1]
    assert members == n


def _project_id(session) -> int:
    from sqlalchemy import select

    from app.auth.models import Project

    return session.scalar(select(Project.id).where(Project.name == "acme"))


@pytest.mark.parametrize(("filename", "content", "fields", "expected"), [
    ("a.csv", csv_bytes("id,body", "1,x"), {}, "no column 'text'; its columns are: 'id', "
                                                "'body'"),
    ("a.csv", csv_bytes("id,text", "1,x"), {"id_column": "key"}, "no column 'key'"),
    ("a.jsonl", b'{"body": "x"}\n{"body": "y"}\n', {}, "no record of the file has a field"),
    ("a.csv", b"", {}, "the file is empty"),
    ("a.csv", csv_bytes("id,text"), {}, "the file has no rows"),
    ("a.jsonl", b"\n\n", {}, "the file has no rows"),
    ("a.txt", csv_bytes("text", "x"), {}, "cannot tell the format"),
    ("a.csv", csv_bytes("text", "x"), {"format": "xlsx"}, "format must be one of"),
    ("a.parquet", b"not parquet at all", {}, "not a readable Parquet file"),
    ("a.csv", "text\ncaf\xe9\n".encode("latin-1"), {}, "not UTF-8"),
    ("a.csv", csv_bytes("text,text", "x,y"), {}, "more than once"),
    ("a.csv", csv_bytes("text", "x"), {"text_column": " "}, "text_column is required"),
    ("a.csv", csv_bytes("text", "x"), {"id_column": "text"}, "must name different columns"),
])
def test_files_that_cannot_be_read_are_422_and_store_nothing(client, editor, filename, content,
                                                              fields, expected):
    r = upload(client, editor, filename, content, **fields)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "InvalidInput" and expected in r.json()["detail"]
    assert client.get("/v1/datasets", headers=editor).json()["items"] == []
    assert client.get("/v1/items", headers=editor).json()["items"] == []


def test_format_field_overrides_the_extension(client, editor):
    r = upload(client, editor, "export.txt", b'{"text": "hi"}\n', format="jsonl")
    assert r.status_code == 201 and r.json()["format"] == "jsonl"


def test_the_request_must_be_multipart_with_a_file(client, editor):
    not_multipart = client.post("/v1/datasets", json={"text_column": "text"}, headers=editor)
    assert not_multipart.status_code == 415
    no_file = client.post("/v1/datasets", data={"text_column": "text"},
                          files={"other": ("a.csv", b"text\nx\n")}, headers=editor)
    assert no_file.status_code == 422 and "part named 'file'" in no_file.json()["detail"]
    two_files = client.post("/v1/datasets", data={"text_column": "text"},
                            files=[("file", ("a.csv", b"text\nx\n")),
                                   ("file", ("b.csv", b"text\ny\n"))], headers=editor)
    assert two_files.status_code == 400 and "Too many files" in two_files.json()["detail"]


def test_the_json_body_limit_does_not_apply_but_the_upload_limit_does(settings, session_factory,
                                                                        monkeypatch):
    from app.main import create_app

    small = settings.model_copy(update={"max_body_bytes": 1024})
    headers = bearer(new_key(session_factory, "acme", "editor"))
    content = csv_bytes("text", *(f"row {i} " + "y" * 50 for i in range(2000)))  # ~120 KB
    with TestClient(create_app(small)) as c:
        r = upload(c, headers, "big.csv", content)
        assert r.status_code == 201, r.text
        assert r.json()["items"] == 2000
        monkeypatch.setattr(upload_module, "MAX_UPLOAD_BYTES", 50_000)
        too_big = upload(c, headers, "big.csv", content)
        assert too_big.status_code == 413 and too_big.json()["error"] == "PayloadTooLarge"
        # a chunked body has no length to check up front: the bytes are counted as they come
        boundary = "b0undary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"text_column\"\r\n\r\n"
                f"text\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"big.csv\"\r\n\r\n").encode() + content + \
            f"\r\n--{boundary}--\r\n".encode()
        chunked = c.post("/v1/datasets", content=iter([body[i:i + 8192]
                                                       for i in range(0, len(body), 8192)]),
                         headers={**headers,
                                  "Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert chunked.status_code == 413


def test_roles_and_project_isolation(client, session_factory, editor):
    ds = upload(client, editor, "a.csv", csv_bytes("text", "secret")).json()["id"]
    viewer = bearer(new_key(session_factory, "acme", "viewer"))
    assert client.get(f"/v1/datasets/{ds}", headers=viewer).status_code == 200
    assert upload(client, viewer, "a.csv", csv_bytes("text", "x")).status_code == 403
    assert upload(client, {}, "a.csv", csv_bytes("text", "x")).status_code == 401
    other = bearer(new_key(session_factory, "globex", "admin"))
    assert client.get(f"/v1/datasets/{ds}", headers=other).status_code == 404
    assert client.get("/v1/datasets", headers=other).json()["items"] == []
    # the same texts in another project are other items
    mine = upload(client, other, "a.csv", csv_bytes("text", "secret")).json()
    assert mine["created"] == 1


def test_list_is_paginated_newest_first(client, editor):
    ids = [upload(client, editor, f"f{i}.csv", csv_bytes("text", f"t{i}")).json()["id"]
           for i in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/datasets", params=params, headers=editor).json()
        seen += [d["id"] for d in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ids[::-1]
    assert client.get("/v1/datasets/ds_missing", headers=editor).status_code == 404


def test_nan_never_reaches_the_database():
    from app.datasets.rows import json_safe

    assert json_safe({"a": [math.inf, -math.inf, math.nan, 1.5]}) == {"a": [None, None, None,
                                                                           1.5]}


def test_a_file_that_breaks_after_stored_batches_leaves_no_dataset(client, editor,
                                                                  monkeypatch):
    """Batches are committed as they go (other writers get in between them on SQLite); a file
    that turns out unreadable later leaves no dataset, and its stored rows stay plain items."""
    monkeypatch.setattr(datasets_service, "BATCH_ROWS", 500)
    good = [f"r{i},text number {i}" for i in range(3000)]
    content = csv_bytes("id,text", *good) + b"bad,\xff\xfe broken\n"
    r = upload(client, editor, "breaks.csv", content, id_column="id")
    assert r.status_code == 422 and "not UTF-8" in r.json()["detail"]
    assert client.get("/v1/datasets", headers=editor).json()["items"] == []
    assert client.get("/v1/items/r0", headers=editor).json()["text"] == "text number 0"
    again = upload(client, editor, "fixed.csv", csv_bytes("id,text", *good), id_column="id")
    assert again.status_code == 201 and again.json()["items"] == 3000
    # Lines are decoded one by one, so every batch before the bad line was stored and remains.
    assert again.json()["created"] == 0
