"""Heavy models are built once per process and model, whatever the app's data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings
from app.runtime import make_judge


def test_apps_with_their_own_data_dirs_share_the_bundled_judge(tmp_path: Path) -> None:
    # Keyed by the data dir, every app (every test) loaded its own ~155 MB judge and the process
    # kept them all: the whole suite grew past the machine's memory.
    settings = Settings(data_dir=tmp_path / "a")
    first = make_judge(settings.llm, tmp_path / "a")
    assert make_judge(settings.llm, tmp_path / "b") is first


def test_the_judges_prompt_is_a_setting(tmp_path: Path, monkeypatch) -> None:
    from typing import get_args

    import pydantic

    from app.config import LLMSettings
    from app.rac.prompts import PROMPTS, LabelInfo, Question

    assert set(get_args(get_args(LLMSettings.model_fields["prompt_version"].annotation)[0])) \
        == set(PROMPTS)
    assert make_judge(LLMSettings(), tmp_path).prompt_version == "yn-3"
    monkeypatch.setenv("RAC_LLM__PROMPT_VERSION", "yn-1")
    settings = Settings(data_dir=tmp_path)
    judge = make_judge(settings.llm, tmp_path)
    assert judge.prompt_version == "yn-1"
    refund = LabelInfo("refund_request", "The customer asks to get their money back.")
    rendered = judge.render(Question("ITEM TEXT", refund))  # type: ignore[attr-defined]
    assert rendered.index("ITEM TEXT") < rendered.index("refund")
    monkeypatch.setenv("RAC_LLM__PROMPT_VERSION", "yn-9")
    with pytest.raises(pydantic.ValidationError, match="prompt_version"):
        Settings(data_dir=tmp_path)
