"""Keys and roles: missing key, wrong key, wrong role, another project's data (both databases)."""

from __future__ import annotations

import pytest

from tests.helpers import bearer, demo_schema, new_key


def test_missing_and_malformed_keys_are_401(client):
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        r = client.get("/v1/schemas", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"] == "Unauthorized"


def test_wrong_key_is_401(client, session_factory):
    new_key(session_factory, "acme")
    r = client.get("/v1/schemas", headers=bearer("rac_deadbeef_not-a-real-key"))
    assert r.status_code == 401 and "unknown" in r.json()["detail"]


@pytest.mark.parametrize("role", ["viewer", "reviewer", "editor"])
def test_only_admin_pushes_schemas(client, session_factory, role):
    key = new_key(session_factory, "acme", role)
    r = client.post("/v1/schemas", json=demo_schema(), headers=bearer(key))
    assert r.status_code == 403 and r.json()["error"] == "Forbidden"
    assert "admin" in r.json()["detail"]
    assert client.get("/v1/schemas", headers=bearer(key)).status_code == 200  # but may read


def test_a_key_sees_only_its_own_project(client, session_factory):
    acme = bearer(new_key(session_factory, "acme"))
    other = bearer(new_key(session_factory, "globex"))
    assert client.post("/v1/schemas", json=demo_schema(), headers=acme).status_code == 201
    assert client.get("/v1/schemas", headers=other).json()["items"] == []
    assert client.get("/v1/schemas/support", headers=other).status_code == 404
    assert client.get("/v1/schemas/support/versions/1", headers=other).status_code == 404
    # the same name in another project is an independent schema
    r = client.post("/v1/schemas", json=demo_schema(n_labels=2), headers=other)
    assert r.status_code == 201 and r.json()["version"] == 1
    assert client.get("/v1/schemas/support", headers=acme).json()["label_count"] == 3


def test_admin_manages_keys_and_revoked_key_stops_working(client, session_factory):
    admin = bearer(new_key(session_factory, "acme"))
    r = client.post("/v1/keys", json={"role": "viewer", "name": "dashboard"}, headers=admin)
    assert r.status_code == 201
    viewer_key, prefix = r.json()["key"], r.json()["prefix"]
    assert client.get("/v1/whoami", headers=bearer(viewer_key)).json() == {
        "project": "acme", "key_name": "dashboard", "role": "viewer"}
    assert client.get("/v1/keys", headers=bearer(viewer_key)).status_code == 403
    listed = client.get("/v1/keys", headers=admin).json()["items"]
    assert all("key" not in k for k in listed)  # plaintext never listed
    assert client.delete(f"/v1/keys/{prefix}", headers=admin).status_code == 200
    assert client.get("/v1/whoami", headers=bearer(viewer_key)).status_code == 401


def test_keys_are_stored_hashed(session_factory):
    from sqlalchemy import select

    from app.auth.models import ApiKey

    key = new_key(session_factory, "acme")
    with session_factory() as s:
        stored = s.scalars(select(ApiKey)).all()
    assert len(stored) == 1 and key not in (stored[0].key_hash, stored[0].prefix)
