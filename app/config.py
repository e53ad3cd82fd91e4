"""Settings: one pydantic-settings root with nested groups, read only from RAC_* variables and .env.

Common knobs have flat names (RAC_DATABASE_URL, RAC_DATA_DIR, RAC_QUEUE); the groups use a double
underscore (RAC_LLM__BACKEND, RAC_EMBEDDER__MODEL_PATH, RAC_JOBS__CHUNK_SIZE). Every default is the
embedded stack: a SQLite file, the bundled models and an in-process worker.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

INSECURE_SECRET = "development-only-secret-change-me"


class LLMSettings(BaseModel):
    """The judge: which backend answers the yes/no questions."""

    backend: Literal["llama_cpp", "openai"] = "llama_cpp"
    """`llama_cpp`: the GGUF model in-process (embedded default). `openai`: an OpenAI-compatible
    server such as vLLM, reached over HTTP at `base_url`."""
    model_path: Path | None = None
    """GGUF file for the llama_cpp backend; empty means `model`, or else the bundled
    SmolLM2-135M-Instruct."""
    n_threads: int | None = None
    """CPU threads for llama.cpp; empty means half the cores (spin-waiting threads stall when
    other work shares the cores)."""
    n_ctx: int = 2048
    """Context window for llama.cpp, in tokens."""
    prefix_cache_mb: int = Field(512, ge=0, le=65_536)
    """Memory for llama.cpp's saved prompt prefixes (one per label asked about, the least
    recently used dropped first; 0 turns them off). A Banking77 label's prefix is about 3.7 MB
    with the bundled judge and 4.3 MB with Qwen2.5-Coder-1.5B: 512 MB keeps all 77 labels of
    either. A budget below a schema's working set loses most of the saving, not a share of it:
    a job's chunks ask about the labels in the same order, so the least recently used state is
    the one needed next (docs/results.md, "Cheaper judge questions, measured again")."""
    prompt_version: Literal["yn-1", "yn-2", "yn-3"] | None = None
    """The judge's question (app/rac/prompts.py); empty means the default, `yn-3`: the label and
    the question, then the item, so only the item follows the prefix shared by a label's
    questions (2.61x the questions/s of the item-first `yn-1` with the bundled judge and saved
    states). `yn-2` puts the question line after the item (2.18x), `yn-1` the item first; their
    answers are measured in docs/results.md ("Cheaper judge questions"). Decisions record the
    version, and the prior's judge weight is fitted per model and version."""
    base_url: str | None = None
    """Root of the OpenAI-compatible API, e.g. http://vllm:8000/v1 (openai backend)."""
    model: str | None = None
    """openai backend: the model name sent to the server. llama_cpp backend: a model assembled
    by `rac models assemble NAME` into data_dir/models (e.g. qwen2.5-coder-1.5b)."""
    api_key: str | None = None
    """Bearer token for the OpenAI-compatible server, if it wants one."""
    max_concurrency: int = Field(16, ge=1, le=1024)
    """Requests in flight at once against the HTTP server."""
    timeout_seconds: float = Field(60.0, gt=0)
    """Per-request timeout against the HTTP server."""
    max_retries: int = Field(8, ge=0, le=100)
    """Retries (exponential backoff) on connection errors, 5xx and timeouts."""


class EmbedderSettings(BaseModel):
    model_path: Path | None = None
    """A local sentence-transformers model folder; empty means `model`, or else the bundled
    all-MiniLM-L6-v2."""
    model: str | None = None
    """A model assembled by `rac models assemble NAME` into data_dir/models (all-mpnet-base-v2:
    a little more accurate, 7x slower to embed; docs/results.md)."""
    batch_size: int = Field(64, ge=1, le=4096)


class EngineSettings(BaseModel):
    """Defaults for a classification when the request does not say otherwise."""

    top_k: int = Field(5, ge=1, le=100)
    """Candidate labels retrieved per item and offered to the judge, most similar first."""
    accept_threshold: float = Field(0.1, ge=0.0, le=1.0)
    """P(yes) at or above which the judge accepts a candidate label. 0.1 is measured for the
    bundled SmolLM2-135M judge, whose P(yes) stays in 0.11-0.34 (0.5 accepted nothing; see
    docs/results.md); with a strong judge behind the openai backend set about 0.5."""
    target_precision: float | None = Field(0.95, gt=0.0, lt=1.0)
    """The precision wanted of the labels accepted without review. The calibrator (fitted on
    the schema's own examples before any review, on reviews after) turns it into the cutoff;
    a request that gives a `cutoff` uses that instead. Empty: always use `cutoff`."""
    cutoff: float = Field(0.8, ge=0.0, le=1.0)
    """Confidence at or above which an accepted label needs no review, when no target
    precision applies (or the calibrator cannot turn one into a cutoff)."""
    prior_judge_questions: int = Field(60, ge=0, le=10_000)
    """Schema examples the judge is asked about when a schema's prior calibrator is fitted (in
    the background after each push; about a minute for 60 with the bundled judge on 2 cores):
    what decides whether the cascade asks the judge at all. 0: the prior never asks it."""
    strategy: Literal["cascade", "sequential", "window", "retrieval"] = "cascade"
    """`cascade` (retrieval decides what it is sure of, the judge is asked only about the rest
    and only if it carries information: 0 judge calls with the bundled judge, measured in
    docs/results.md); `sequential` (the paper: the judge on every item), `window`, or
    `retrieval` (no judge)."""


class JobsSettings(BaseModel):
    chunk_size: int = Field(256, ge=1, le=100_000)
    """Items per chunk: the unit of work a worker claims, commits and can lose to a crash."""
    lease_seconds: int = Field(600, ge=5)
    """A claimed chunk returns to the queue if its worker is silent this long."""
    broker_url: str = "redis://127.0.0.1:6379/0"
    """Celery broker (RAC_QUEUE=celery)."""
    celery_queue: str = "rac-chunks"
    """Celery queue the chunk tasks go to."""
    inprocess_worker: bool = True
    """With RAC_QUEUE=inprocess, run a worker thread inside the API process (else only
    `rac worker` processes run jobs)."""
    worker_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    """A worker's name, stable across restarts; empty means the host name. A restarted worker
    takes back at once the chunks its dead previous process still held (instead of waiting out
    their leases); set it where host names change on restart (containers)."""
    progress_seconds: float = Field(2.0, gt=0, le=600)
    """A worker commits a chunk's labels in slices sized to take about this long, so a job's
    `done` moves every few seconds (one commit per 256-item chunk left it at 0 for 8 minutes
    with the bundled judge) while a fast backend still gets large batches."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAC_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Literal["development", "production"] = "development"
    """`production` refuses insecure defaults (the development secret, auto-created keys)."""
    data_dir: Path = Path("var")
    """Where indexes, caches and the embedded SQLite database live."""
    database_url: str | None = None
    """SQLAlchemy URL; empty means a SQLite file `rac.db` inside data_dir."""
    db_auto_upgrade: bool | None = None
    """Apply migrations when the server starts; empty means yes for SQLite, no otherwise."""
    queue: Literal["inprocess", "celery"] = "inprocess"
    """Where batch jobs run: a worker thread inside the API process, or Celery workers."""
    secret_key: str = INSECURE_SECRET
    """Signs browser sessions of the review page."""
    review_lease_seconds: int = Field(600, ge=5, le=86_400)
    """How long items handed to a reviewer stay theirs alone."""
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    """Largest request body accepted outside streamed dataset uploads."""
    log_format: Literal["text", "json"] = "text"
    """How the service logs (job start/finish/failure/cancel among others): readable lines, or
    one JSON object per line for a log collector."""

    llm: LLMSettings = LLMSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    engine: EngineSettings = EngineSettings()
    jobs: JobsSettings = JobsSettings()

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        weak_secret = self.secret_key == INSECURE_SECRET or len(self.secret_key) < 32
        if self.env == "production" and weak_secret:
            raise ValueError(
                "RAC_SECRET_KEY must be set to a random string of 32+ characters "
                "when RAC_ENV=production"
            )
        if self.llm.backend == "openai" and not self.llm.base_url:
            raise ValueError("RAC_LLM__BASE_URL is required when RAC_LLM__BACKEND=openai")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'rac.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "indexes"

    @property
    def auto_upgrade(self) -> bool:
        if self.db_auto_upgrade is not None:
            return self.db_auto_upgrade
        return self.resolved_database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
