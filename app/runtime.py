"""The engine's heavy objects (embedder, judge, index store), built once per process from settings.

The API builds one at start-up; workers and the CLI build their own. Models are cached per
process by their configuration, so several apps in one process (tests) share one copy.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from app.config import EmbedderSettings, LLMSettings, Settings
from app.rac.embedder import Embedder, SentenceTransformerEmbedder
from app.rac.engine import ClassifyParams, Engine
from app.rac.index_store import IndexStore
from app.rac.judge import Judge

_models: dict[object, object] = {}
_models_lock = threading.Lock()


def _cached(key: object, build):  # type: ignore[no-untyped-def]
    with _models_lock:
        if key not in _models:
            _models[key] = build()
        return _models[key]


def make_embedder(settings: EmbedderSettings) -> Embedder:
    key = ("embedder", settings.model_path, settings.batch_size)
    return _cached(key, lambda: SentenceTransformerEmbedder(settings.model_path,
                                                            batch_size=settings.batch_size))


def make_judge(settings: LLMSettings) -> Judge:
    key = ("judge", settings.model_dump_json())
    if settings.backend == "openai":
        from app.rac.judges.openai_http import OpenAIJudge

        assert settings.base_url is not None  # checked by Settings
        return _cached(key, lambda: OpenAIJudge(
            settings.base_url, settings.model, api_key=settings.api_key,
            max_concurrency=settings.max_concurrency, timeout=settings.timeout_seconds,
            max_retries=settings.max_retries))
    from app.rac.judges.llama_cpp import LlamaCppJudge

    return _cached(key, lambda: LlamaCppJudge(settings.model_path, n_ctx=settings.n_ctx,
                                              n_threads=settings.n_threads))


@dataclass
class Runtime:
    settings: Settings
    embedder: Embedder
    judge: Judge
    engine: Engine
    indexes: IndexStore

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        embedder = make_embedder(settings.embedder)
        judge = make_judge(settings.llm)
        return cls(settings, embedder, judge, Engine(embedder, judge),
                   IndexStore(settings.index_dir, embedder))

    def params(self, *, multi_label: bool = False, **overrides: object) -> ClassifyParams:
        """Classification parameters: the request's overrides on top of the configured defaults."""
        defaults = self.settings.engine.model_dump()
        chosen = {k: v for k, v in overrides.items() if v is not None}
        return ClassifyParams(**{**defaults, **chosen}, multi_label=multi_label)
