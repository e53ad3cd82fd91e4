"""The `rac` command reads the same settings as the server and writes to its database."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from tests.helpers import SCHEMAS_DIR, bearer


def rac(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_keys_create_and_schemas_push_write_to_the_servers_database(settings, db):
    env = {"RAC_DATABASE_URL": db.url, "RAC_DATA_DIR": str(settings.data_dir)}
    made = rac("keys", "create", "--project", "demo", "--role", "admin", env=env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("rac_")
    pushed = rac("schemas", "push", str(SCHEMAS_DIR / "demo.yaml"), "--project", "demo", env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert "version 1" in pushed.stdout

    from app.main import create_app

    with TestClient(create_app(settings)) as client:
        r = client.get("/v1/schemas/support-demo", headers=bearer(key))
        assert r.status_code == 200 and r.json()["label_count"] == 5


def test_schemas_push_reports_validation_errors(tmp_path, settings, db):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nlabels:\n  - name: a\n    description: ''\n")
    env = {"RAC_DATABASE_URL": db.url, "RAC_DATA_DIR": str(settings.data_dir)}
    result = rac("schemas", "push", str(bad), "--project", "demo", env=env)
    assert result.returncode == 2
    assert "labels[0] (name 'a').description" in result.stderr


def test_admin_commands_refuse_to_create_a_database_silently(tmp_path):
    elsewhere = tmp_path / "not-the-servers"
    env = {"RAC_DATA_DIR": str(elsewhere), "RAC_DATABASE_URL": ""}
    refused = rac("keys", "create", "--project", "demo", "--role", "admin", env=env)
    assert refused.returncode == 2 and refused.stdout == ""
    assert f"database: sqlite:///{elsewhere.resolve() / 'rac.db'}" in refused.stderr
    assert "error: no database at" in refused.stderr and "--init" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (elsewhere / "rac.db").exists()
    pushed = rac("schemas", "push", str(SCHEMAS_DIR / "demo.yaml"), "--project", "demo",
                 env=env)
    assert pushed.returncode == 2 and "no database at" in pushed.stderr
    made = rac("keys", "create", "--project", "demo", "--role", "admin", "--init", env=env)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().splitlines()[-1].startswith("rac_")
    assert (elsewhere / "rac.db").exists()
    again = rac("keys", "create", "--project", "demo", "--role", "viewer", env=env)
    assert again.returncode == 0, again.stderr  # it exists now: no --init needed


def test_admin_commands_refuse_an_empty_postgresql_database(db):
    if db.backend != "postgresql":
        pytest.skip("the SQLite case is the missing file above")
    from sqlalchemy import text

    from tests.conftest import POSTGRES_URL

    schema = f"rac_empty_{os.getpid()}"
    with db.engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        env = {"RAC_DATABASE_URL": f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"}
        refused = rac("keys", "create", "--project", "demo", "--role", "admin", env=env)
        assert refused.returncode == 2 and "has no RAC tables yet" in refused.stderr
    finally:
        with db.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
