"""Label schemas over the API: validation, immutable versions, idempotency (both databases)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.helpers import SCHEMAS_DIR, bearer, demo_schema, new_key


@pytest.fixture
def admin(session_factory) -> dict[str, str]:
    return bearer(new_key(session_factory, "acme", "admin"))


def push(client, headers, doc, *, as_yaml: bool = False):
    if as_yaml:
        return client.post("/v1/schemas", content=yaml.safe_dump(doc),
                           headers={**headers, "Content-Type": "application/yaml"})
    return client.post("/v1/schemas", content=json.dumps(doc),
                       headers={**headers, "Content-Type": "application/json"})


def test_push_banking77_yaml_file(client, admin):
    body = (SCHEMAS_DIR / "banking77.yaml").read_bytes()
    r = client.post("/v1/schemas", content=body,
                    headers={**admin, "Content-Type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "banking77"
    assert r.json()["label_count"] == 77
    assert r.json()["version"] == 1


def test_same_content_is_idempotent_and_change_makes_new_version(client, admin):
    first = push(client, admin, demo_schema())
    assert first.status_code == 201 and first.json()["version"] == 1
    again = push(client, admin, demo_schema(), as_yaml=True)  # same content, other syntax
    assert again.status_code == 200
    assert again.json()["version"] == 1 and again.json()["created"] is False
    changed = demo_schema()
    changed["labels"][0]["description"] = "A new description."
    second = push(client, admin, changed)
    assert second.status_code == 201 and second.json()["version"] == 2
    # versions are immutable: v1 still holds the old description
    v1 = client.get("/v1/schemas/support/versions/1", headers=admin).json()
    assert v1["labels"][0]["description"] == "Description of label 0."
    latest = client.get("/v1/schemas/support", headers=admin).json()
    assert latest["version"] == 2 and latest["latest_version"] == 2
    assert latest["labels"][0]["description"] == "A new description."
    listing = client.get("/v1/schemas", headers=admin).json()["items"]
    assert [(s["name"], s["version"]) for s in listing] == [("support", 2)]


def test_unknown_schema_and_version_are_404(client, admin):
    r = client.get("/v1/schemas/nope", headers=admin)
    assert r.status_code == 404 and r.json()["error"] == "NotFound"
    push(client, admin, demo_schema())
    r = client.get("/v1/schemas/support/versions/9", headers=admin)
    assert r.status_code == 404 and "version 9" in r.json()["detail"]


def _bad(**kw):
    return demo_schema(**kw)


def _with_label(i: int, **fields):
    doc = demo_schema()
    doc["labels"][i].update(fields)
    return doc


BAD_DOCUMENTS = {
    "duplicate label names": (
        lambda: _with_label(2, name="label_0"), ["labels", "duplicate", "label_0"]),
    "empty label name": (lambda: _with_label(1, name="   "), ["labels[1]", "name"]),
    "empty description": (
        lambda: _with_label(1, description=""), ["labels[1] (name 'label_1').description"]),
    "description too long": (
        lambda: _with_label(0, description="x" * 4001), ["labels[0] (name 'label_0').description",
                                                         "4000"]),
    "wrong type for examples": (
        lambda: _with_label(0, examples="not a list"), ["labels[0] (name 'label_0').examples"]),
    "number as a label name": (lambda: _with_label(0, name=7), ["labels[0]", "name"]),
    "unknown key in a label": (
        lambda: _with_label(2, colour="red"), ["labels[2] (name 'label_2').colour", "unknown key"]),
    "unknown top-level key": (lambda: _bad(owner="me"), ["owner", "unknown key"]),
    "no labels": (lambda: _bad(labels=[]), ["labels"]),
    "bad schema name": (lambda: _bad(name="has space/slash"), ["name"]),
    "multi_label not a bool": (lambda: _bad(multi_label="yes"), ["multi_label"]),
    "too many labels": (lambda: demo_schema(n_labels=20_001), ["labels", "20000"]),
}


@pytest.mark.parametrize("case", sorted(BAD_DOCUMENTS))
def test_bad_schema_is_422_naming_label_and_field(client, admin, case):
    make, needles = BAD_DOCUMENTS[case]
    r = push(client, admin, make())
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "InvalidInput"
    for needle in needles:
        assert needle in body["detail"], (needle, body["detail"])
    assert client.get("/v1/schemas", headers=admin).json()["items"] == []  # nothing stored


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"", "application/yaml", 400),
        (b"name: [unclosed", "application/yaml", 400),
        (b"{not json", "application/json", 400),
        (b"\xff\xfe\x00garbage", "application/yaml", 400),
        (b"- just\n- a list\n", "application/yaml", 422),
        (b"42", "application/json", 422),
        (b"null", "application/json", 422),
    ],
)
def test_unparseable_bodies_are_4xx_json(client, admin, body, content_type, status):
    r = client.post("/v1/schemas", content=body, headers={**admin, "Content-Type": content_type})
    assert r.status_code == status, r.text
    assert set(r.json()) >= {"error", "detail"}


def test_body_over_limit_is_413(client, admin):
    limit = client.app.state.settings.max_body_bytes
    r = client.post("/v1/schemas", content=b"a" * (limit + 1),
                    headers={**admin, "Content-Type": "application/yaml"})
    assert r.status_code == 413 and r.json()["error"] == "PayloadTooLarge"


def test_schema_format_endpoint_matches_committed_json_schema(client):
    committed = json.loads((SCHEMAS_DIR / "label-schema.json").read_text())
    assert client.get("/v1/schema-format").json() == committed


def test_example_schemas_validate():
    from app.label_schemas.format import parse_document, validate_schema_document

    for path in SCHEMAS_DIR.glob("*.yaml"):
        doc = validate_schema_document(parse_document(path.read_bytes(), "application/yaml"))
        assert doc.labels, path


def test_a_schema_with_a_number_beyond_pythons_digit_limit_is_a_400(client, session_factory):
    admin = bearer(new_key(session_factory, "acme", "admin"))
    for media, body in (("application/json", b'{"name": "x", "n": ' + b"9" * 5000 + b"}"),
                        ("application/yaml", b"name: x\nn: " + b"9" * 5000 + b"\n")):
        r = client.post("/v1/schemas", content=body, headers={**admin, "Content-Type": media})
        assert r.status_code in (400, 422), r.text
        assert r.json()["error"] in ("BadRequest", "ValidationError"), r.text
