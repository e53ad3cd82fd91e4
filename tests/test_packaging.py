"""A built wheel is the whole service: installed outside the checkout it migrates a new database
and serves its API docs without any file from the repository."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from tests.helpers import REPO, build_wheel, install_wheel

pytestmark = pytest.mark.slow


def test_an_installed_wheel_migrates_from_any_directory(tmp_path):
    wheel = build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    migrations = [n for n in names if n.startswith("app/migrations/versions/")]
    assert len(migrations) == len(list((REPO / "migrations" / "versions").glob("*.py")))
    assert "app/migrations/env.py" in names
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("METADATA"))).decode()
    runtime = [line for line in metadata.splitlines()
               if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert any("fastapi-offline" in line for line in runtime)
    assert not any(tool in line for line in runtime  # test tools stay in the dev extra
                   for tool in ("pytest", "playwright", "schemathesis", "mypy"))

    # Installed (without dependencies: the test's environment has them) into a folder that is
    # not the checkout, and run from a third folder.
    target = install_wheel(wheel, tmp_path / "site")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "RAC_DATA_DIR": str(elsewhere / "data")}
    env.pop("RAC_DATABASE_URL", None)
    result = subprocess.run([sys.executable, "-c",
                             "import app.db, sys; print(app.db.MIGRATIONS_DIR)"],
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().startswith(str(target)), result
    upgrade = subprocess.run([sys.executable, "-m", "app.cli", "db", "upgrade"], cwd=elsewhere,
                             env=env, capture_output=True, text=True, timeout=300)
    assert upgrade.returncode == 0, upgrade.stderr[-2000:]
    assert (elsewhere / "data" / "rac.db").exists()
