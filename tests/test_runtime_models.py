"""Heavy models are built once per process and model, whatever the app's data dir."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings
from app.runtime import make_judge


def test_apps_with_their_own_data_dirs_share_the_bundled_judge(tmp_path: Path) -> None:
    # Keyed by the data dir, every app (every test) loaded its own ~155 MB judge and the process
    # kept them all: the whole suite grew past the machine's memory.
    settings = Settings(data_dir=tmp_path / "a")
    first = make_judge(settings.llm, tmp_path / "a")
    assert make_judge(settings.llm, tmp_path / "b") is first
