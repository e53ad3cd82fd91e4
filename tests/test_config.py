from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings


def test_defaults_are_the_embedded_stack(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings(_env_file=None)
    assert s.resolved_database_url.startswith("sqlite:///")
    assert s.resolved_database_url.endswith("var/rac.db")
    assert s.llm.backend == "llama_cpp" and s.queue == "inprocess"
    assert s.auto_upgrade is True


def test_environment_variables_configure_nested_groups(monkeypatch):
    monkeypatch.setenv("RAC_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("RAC_LLM__BACKEND", "openai")
    monkeypatch.setenv("RAC_LLM__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("RAC_JOBS__CHUNK_SIZE", "50")
    s = Settings(_env_file=None)
    assert s.resolved_database_url == "postgresql+psycopg://u@h/db"
    assert s.auto_upgrade is False  # PostgreSQL: migrations are an explicit step
    assert s.llm.base_url == "http://127.0.0.1:9/v1" and s.jobs.chunk_size == 50


def test_the_embedder_is_named_like_the_judge(monkeypatch):
    assert Settings(_env_file=None).embedder.model is None  # the bundled MiniLM
    monkeypatch.setenv("RAC_EMBEDDER__MODEL", "all-mpnet-base-v2")
    assert Settings(_env_file=None).embedder.model == "all-mpnet-base-v2"


def test_production_refuses_the_development_secret():
    with pytest.raises(ValidationError, match="RAC_SECRET_KEY"):
        Settings(_env_file=None, env="production")
    Settings(_env_file=None, env="production", secret_key="k" * 40)


def test_openai_backend_needs_a_base_url():
    with pytest.raises(ValidationError, match="BASE_URL"):
        Settings(_env_file=None, llm={"backend": "openai"})
