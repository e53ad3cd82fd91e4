"""Posting and reading items: bulk, idempotency, limits, pagination (both databases)."""

from __future__ import annotations

import pytest

from tests.helpers import bearer, new_key


@pytest.fixture
def editor(session_factory) -> dict[str, str]:
    return bearer(new_key(session_factory, "acme", "editor"))


def test_one_item_a_list_or_a_batch_object(client, editor):
    one = client.post("/v1/items", json={"id": "a", "text": "hello"}, headers=editor)
    assert one.status_code == 201 and one.json() == {"ids": ["a"], "created": 1, "existing": 0}
    many = client.post("/v1/items", json=[{"id": "b", "text": "x"}, {"text": "no id"}],
                       headers=editor)
    assert many.status_code == 201
    ids = many.json()["ids"]
    assert ids[0] == "b" and ids[1].startswith("txt_")
    # Without an id the id comes from the text: posting the same text again is the same item,
    # and uploading it in a file (which derives ids the same way) too.
    again = client.post("/v1/items", json=[{"text": "no id"}], headers=editor).json()
    assert again == {"ids": [ids[1]], "created": 0, "existing": 1}
    upload = client.post("/v1/datasets", files={"file": ("t.csv", b"text\nno id\n")},
                         data={"text_column": "text"}, headers=editor)
    assert upload.status_code == 201 and upload.json()["created"] == 0, upload.text
    batch = client.post("/v1/items", json={"items": [{"id": "c", "text": "y",
                                                      "metadata": {"src": "crm", "n": 3}}]},
                        headers=editor)
    assert batch.status_code == 201
    item = client.get("/v1/items/c", headers=editor).json()
    assert item["text"] == "y" and item["metadata"] == {"src": "crm", "n": 3}
    assert item["labels"] == []
    assert client.get(f"/v1/items/{ids[1]}", headers=editor).json()["text"] == "no id"


def test_reposting_is_idempotent_and_changed_text_is_409_storing_nothing(client, editor):
    first = client.post("/v1/items", json=[{"id": "a", "text": "one"}, {"id": "b", "text": "two"}],
                        headers=editor)
    assert first.json()["created"] == 2
    again = client.post("/v1/items", json=[{"id": "a", "text": "one"}, {"id": "b", "text": "two"}],
                        headers=editor)
    assert again.status_code == 200 and again.json() == {"ids": ["a", "b"], "created": 0,
                                                         "existing": 2}
    clash = client.post("/v1/items", json=[{"id": "new", "text": "fresh"},
                                           {"id": "b", "text": "TWO (changed)"}], headers=editor)
    assert clash.status_code == 409
    assert clash.json()["error"] == "Conflict" and clash.json()["conflicting_ids"] == ["b"]
    assert client.get("/v1/items/new", headers=editor).status_code == 404  # all or nothing
    assert client.get("/v1/items/b", headers=editor).json()["text"] == "two"


def test_same_id_twice_in_one_request(client, editor):
    same = client.post("/v1/items", json=[{"id": "d", "text": "t"}, {"id": "d", "text": "t"}],
                       headers=editor)
    assert same.status_code == 201 and same.json()["created"] == 1
    differ = client.post("/v1/items", json=[{"id": "e", "text": "t"}, {"id": "e", "text": "u"}],
                         headers=editor)
    assert differ.status_code == 422 and "items[1]" in differ.json()["detail"]


@pytest.mark.parametrize("body", [
    {"text": ""},
    {"text": "   "},
    {"text": "x" * 20_001},
    {"text": 5},
    {"id": "has space", "text": "x"},
    {"id": "a/b", "text": "x"},
    {"id": "x" * 201, "text": "x"},
    {"text": "x", "metadata": {"blob": "y" * 17_000}},
    {"text": "x", "metadata": ["not", "an", "object"]},
    {"text": "x", "colour": "red"},
    [],
    {"items": []},
    "just a string",
])
def test_bad_items_are_422(client, editor, body):
    r = client.post("/v1/items", json=body, headers=editor)
    assert r.status_code == 422, r.text
    assert r.json()["error"] in {"RequestValidationError", "InvalidInput"}
    assert r.json()["detail"]


def test_more_than_10000_items_is_refused(client, editor):
    r = client.post("/v1/items", json=[{"text": "x"}] * 10_001, headers=editor)
    assert r.status_code == 422


def test_ten_thousand_items_in_one_request(client, editor):
    items = [{"id": f"bulk-{i}", "text": f"message number {i}"} for i in range(10_000)]
    r = client.post("/v1/items", json={"items": items}, headers=editor)
    assert r.status_code == 201 and r.json()["created"] == 10_000
    page = client.get("/v1/items", params={"limit": 1000}, headers=editor).json()
    assert len(page["items"]) == 1000 and page["next_cursor"]


def test_keyset_pagination_walks_every_item_once(client, editor):
    client.post("/v1/items", json=[{"id": f"p{i:02d}", "text": f"t{i}"} for i in range(25)],
                headers=editor)
    seen, cursor = [], None
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/items", params=params, headers=editor).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"p{i:02d}" for i in range(25)]
    bad = client.get("/v1/items", params={"cursor": "!!not-a-cursor"}, headers=editor)
    assert bad.status_code == 422


def test_filters_need_a_schema(client, editor):
    r = client.get("/v1/items", params={"status": "accepted"}, headers=editor)
    assert r.status_code == 422 and "need a schema" in r.json()["detail"]


def test_viewer_reads_but_cannot_post_and_projects_are_isolated(client, session_factory, editor):
    client.post("/v1/items", json={"id": "secret", "text": "acme only"}, headers=editor)
    viewer = bearer(new_key(session_factory, "acme", "viewer"))
    assert client.get("/v1/items/secret", headers=viewer).status_code == 200
    assert client.post("/v1/items", json={"text": "x"}, headers=viewer).status_code == 403
    other = bearer(new_key(session_factory, "globex", "editor"))
    assert client.get("/v1/items/secret", headers=other).status_code == 404
    assert client.get("/v1/items", headers=other).json()["items"] == []
    # the same client id in another project is another item
    assert client.post("/v1/items", json={"id": "secret", "text": "globex's own"},
                       headers=other).status_code == 201
    assert client.get("/v1/items/secret", headers=editor).json()["text"] == "acme only"
