"""The engine's heavy objects (embedder, judge, index store), built once per process from settings.

Only heavy objects and their construction live here: no database queries, no feature imports
(which judge a schema uses is the labelling feature's choice).

The API builds one at start-up; workers and the CLI build their own. Models are cached per
process by their configuration, so several apps in one process (tests) share one copy.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from app.config import EmbedderSettings, LLMSettings, Settings
from app.rac.coalescing_embedder import CoalescingEmbedder
from app.rac.decision import ClassifyParams
from app.rac.embedder import Embedder, SentenceTransformerEmbedder
from app.rac.engine import Engine
from app.rac.index_store import IndexStore
from app.rac.judge import Judge
from app.rac.prior import PriorStore

_models: dict[object, object] = {}
_models_lock = threading.Lock()


def _cached(key: object, build):  # type: ignore[no-untyped-def]
    with _models_lock:
        if key not in _models:
            _models[key] = build()
        return _models[key]


def embedder_model_path(settings: EmbedderSettings, data_dir: Path | None) -> Path | None:
    """The sentence-transformers folder the embedder loads: `model_path`, else the assembled
    model named by `model` (`rac models assemble`), else None (the bundled MiniLM)."""
    if settings.model_path is not None or not settings.model:
        return settings.model_path
    if data_dir is None:
        raise ValueError("an embedder named by `model` needs the data directory")
    from app.rac.chunked_folders import resolve_folder

    return resolve_folder(settings.model, data_dir)


def make_embedder(settings: EmbedderSettings, data_dir: Path | None = None) -> Embedder:
    path = embedder_model_path(settings, data_dir)
    key = ("embedder", path, settings.batch_size)
    # Concurrent requests' texts share forward passes (app/rac/coalescing_embedder.py).
    return _cached(key, lambda: CoalescingEmbedder(SentenceTransformerEmbedder(
        path, batch_size=settings.batch_size)))


def judge_model_path(settings: LLMSettings, data_dir: Path) -> Path | None:
    """The GGUF file the llama_cpp judge loads: `model_path`, else the assembled model named by
    `model` (`rac models assemble`), else None (the bundled judge)."""
    if settings.model_path is not None or not settings.model:
        return settings.model_path
    from app.rac.chunked_models import resolve_model

    return resolve_model(settings.model, data_dir)


def make_judge(settings: LLMSettings, data_dir: Path) -> Judge:
    # Keyed by the model file, not the data dir: one judge per model per process (a key with the
    # data dir loaded a new ~155 MB judge for every app a process built with its own data dir,
    # and the test suite grew to 22 GB).
    key = ("judge", settings.model_dump_json())
    if settings.backend == "openai":
        from app.rac.judges.openai_http import OpenAIJudge

        assert settings.base_url is not None  # checked by Settings
        return _cached(key, lambda: OpenAIJudge(
            settings.base_url, settings.model, api_key=settings.api_key,
            max_concurrency=settings.max_concurrency, timeout=settings.timeout_seconds,
            max_retries=settings.max_retries, prompt_version=settings.prompt_version))
    from app.rac.judges.llama_cpp import LlamaCppJudge

    path = judge_model_path(settings, data_dir)
    return _cached((*key, str(path)), lambda: LlamaCppJudge(
        path, n_ctx=settings.n_ctx, n_threads=settings.n_threads,
        prompt_version=settings.prompt_version,
        prefix_cache_bytes=settings.prefix_cache_mb * 1024 * 1024))


def make_trained_judge(path: Path, model_id: str, settings: LLMSettings) -> Judge:
    """A trained judge, loaded once per process (by its file) and exported to /metrics."""
    from app.metrics import observe_judge
    from app.rac.judges.trained import load_trained_judge

    def build() -> Judge:
        judge = load_trained_judge(path, model_id=model_id, threads=settings.n_threads)
        observe_judge(judge)
        return judge

    return _cached(("trained-judge", str(path), model_id), build)


@dataclass
class Runtime:
    settings: Settings
    embedder: Embedder
    judge: Judge
    engine: Engine
    indexes: IndexStore
    priors: PriorStore = field(default_factory=PriorStore)
    """Each schema's prior calibrator (from its examples), used until reviews fit one."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        embedder = make_embedder(settings.embedder, settings.data_dir)
        judge = make_judge(settings.llm, settings.data_dir)
        return cls(settings, embedder, judge, Engine(embedder, judge),
                   IndexStore(settings.index_dir, embedder))

    @property
    def background_embedder(self) -> Embedder:
        """The embedder for background work (refits): not through the requests' shared passes,
        where a request arriving meanwhile would wait for the refit's batch or share a pass
        with it."""
        embedder = self.embedder
        return embedder.inner if isinstance(embedder, CoalescingEmbedder) else embedder

    def params(self, *, multi_label: bool = False, schema_target: float | None = None,
               **overrides: object) -> ClassifyParams:
        """Classification parameters: the request's overrides on top of the schema's target
        precision (`schema_target`, when its document sets one) on top of the configured
        defaults."""
        defaults = self.settings.engine.model_dump(exclude={"prior_judge_questions"})
        if schema_target is not None:
            defaults["target_precision"] = schema_target
        chosen = {k: v for k, v in overrides.items() if v is not None}
        if "cutoff" in chosen and "target_precision" not in chosen:
            chosen["target_precision"] = None  # the caller's cutoff wins over the default target
        return ClassifyParams(**{**defaults, **chosen}, multi_label=multi_label)
