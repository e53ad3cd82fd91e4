"""Training judges on a schema's labels, listing and activating them.

A training is a `trained_judges` row in state `training`, then the work (`run`, minutes on a CPU)
in its own session: on a background thread of the API process, or in the foreground for
`rac judge train`. Its training data are the schema's own examples plus reviewed items (a
person's label is ground truth) and/or rows of a CSV file. The row ends `ready` (with its metrics)
or `failed` (with the error); a ready judge serves only once activated.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope, utcnow
from app.errors import BadRequest, Conflict, NotFound
from app.judges import repository
from app.judges.models import TrainedJudge
from app.label_schemas.index import index_for, labels_of
from app.label_schemas.models import LabelSchema, SchemaVersion
from app.rac.trained_prompt import TRAINED_PROMPT_VERSION
from app.rac.training import LabelledText, TrainConfig, schema_examples, select_examples
from app.runtime import Runtime

log = logging.getLogger(__name__)

JUDGES_DIR = "judges"
_one_at_a_time = threading.Lock()
"""Training takes every core it is given: trainings in one process queue behind each other."""
_running: set[int] = set()


@dataclass(frozen=True)
class TrainOptions:
    from_reviews: bool = True
    """Train on the schema's reviewed items (besides its own examples)."""
    examples_per_label: int | None = None
    """At most this many reviewed items (or CSV rows) per label; empty means all."""
    epochs: int = TrainConfig.epochs
    seed: int = 0
    train_layers: int = TrainConfig.train_layers

    def config(self, threads: int | None) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, seed=self.seed, train_layers=self.train_layers,
                           threads=threads)


# ---- activation ------------------------------------------------------------------------------
def activate(session: Session, schema: LabelSchema, version: int) -> TrainedJudge:
    """Make `version` the judge the engine asks for this schema (and no other version)."""
    judge = repository.get_judge(session, schema, version)
    if judge.state != "ready":
        raise Conflict(f"trained judge version {version} is {judge.state}, not ready")
    repository.deactivate_others(session, schema.id, judge.id)
    judge.active = True
    session.flush()
    return judge


def deactivate(session: Session, schema: LabelSchema, version: int) -> TrainedJudge:
    """Back to the default judge for this schema."""
    judge = repository.get_judge(session, schema, version)
    judge.active = False
    session.flush()
    return judge


def reviewed_examples(session: Session, schema_id: int) -> list[LabelledText]:
    """The schema's reviewed items with a label: ground truth from people."""
    return [LabelledText(text, label)
            for text, label in repository.reviewed_texts(session, schema_id)]


def training_running() -> bool:
    return bool(_running)


# ---- a training ------------------------------------------------------------------------------
def start(session: Session, schema: LabelSchema, version: SchemaVersion,
          options: TrainOptions, rows: Sequence[LabelledText] = ()) -> TrainedJudge:
    """Check there is something to learn from and add the version's row (state `training`)."""
    labels = labels_of(version)
    if len(labels) < 2:
        raise BadRequest("a judge learns to tell labels apart: the schema needs 2+ labels")
    n_examples = len(schema_examples(labels)) + len(rows)
    if options.from_reviews:
        n_examples += repository.count_reviewed(session, schema.id)
    if n_examples == 0:
        raise BadRequest("nothing to train on: the schema has no examples, no reviewed items "
                         "and no data was given")
    number = repository.latest_version(session, schema.id) + 1
    path = f"{JUDGES_DIR}/p{schema.project_id}-s{schema.id}/v{number}.gguf"
    judge = TrainedJudge(schema_id=schema.id, version=number, state="training", path=path,
                         model_id=f"trained:{schema.name}-v{number}",
                         prompt_version=TRAINED_PROMPT_VERSION, schema_version=version.version,
                         data={"source": _source(options, rows), **asdict(options)},
                         metrics={}, active=False)
    session.add(judge)
    session.flush()
    return judge


def _source(options: TrainOptions, rows: Sequence[LabelledText]) -> str:
    parts = ["schema examples"] + (["reviewed items"] if options.from_reviews else [])
    return " + ".join(parts + (["data file"] if rows else []))


def run(factory: sessionmaker[Session], runtime: Runtime, judge_id: int, options: TrainOptions,
        rows: Sequence[LabelledText] = (), *, progress: bool = False) -> None:
    """Train the judge of row `judge_id` and record the outcome (never raises: a failure is
    stored on the row, where the API shows it)."""
    with _one_at_a_time:
        _running.add(judge_id)
        try:
            _train(factory, runtime, judge_id, options, rows, progress)
        except Exception as exc:  # the row must say why, whatever went wrong
            log.exception("training judge %s failed", judge_id)
            with session_scope(factory) as session:
                judge = session.get(TrainedJudge, judge_id)
                if judge is not None:
                    judge.state, judge.error = "failed", f"{type(exc).__name__}: {exc}"
                    judge.finished_at = utcnow()
        finally:
            _running.discard(judge_id)


def run_in_background(factory: sessionmaker[Session], runtime: Runtime, judge_id: int,
                      options: TrainOptions) -> threading.Thread:
    thread = threading.Thread(target=run, args=(factory, runtime, judge_id, options),
                              name=f"train-judge-{judge_id}", daemon=True)
    thread.start()
    return thread


def _train(factory: sessionmaker[Session], runtime: Runtime, judge_id: int,
           options: TrainOptions, rows: Sequence[LabelledText], progress: bool) -> None:
    from app.rac.training import train_judge

    with session_scope(factory) as session:
        judge = session.get(TrainedJudge, judge_id)
        if judge is None:
            raise NotFound(f"no trained judge row {judge_id}")
        schema = session.get(LabelSchema, judge.schema_id)
        assert schema is not None
        version = repository.trained_on_version(session, judge)
        assert version is not None
        labels = labels_of(version)
        names = {label.name for label in labels}
        own = reviewed_examples(session, schema.id) if options.from_reviews else []
        given = [r for r in [*own, *rows] if r.label in names]
        chosen = select_examples(given, options.examples_per_label, options.seed)
        examples = schema_examples(labels) + chosen
        # The index the engine searches (with reviewed items as exemplars) ranks the negatives.
        index = index_for(session, runtime, schema, version)
        out = runtime.settings.data_dir / judge.path
        judge_path = judge.path

    def on_step(step: int, steps: int, loss: float) -> None:
        if step == steps or step % max(1, steps // 20) == 0:  # ~20 updates per training
            with session_scope(factory) as s:
                row = s.get(TrainedJudge, judge_id)
                if row is not None:
                    row.metrics = {"progress": {"step": step, "steps": steps, "loss": loss}}

    report = train_judge(labels, examples, index, runtime.embedder, out,
                         options.config(runtime.settings.llm.n_threads), progress=progress,
                         on_step=on_step)
    per_label: dict[str, int] = {}
    for example in chosen:
        per_label[example.label] = per_label.get(example.label, 0) + 1
    with session_scope(factory) as session:
        judge = session.get(TrainedJudge, judge_id)
        assert judge is not None
        judge.state, judge.finished_at = "ready", utcnow()
        judge.data = {**judge.data, "schema_examples": len(examples) - len(chosen),
                      "reviewed_or_data_items": len(chosen),
                      "labels_with_items": len(per_label), "pairs": report.pairs,
                      "file": judge_path, "bytes": Path(out).stat().st_size}
        judge.metrics = {"seconds": round(report.seconds, 1), "steps": report.steps,
                         "loss_first": report.loss_first, "loss_last": report.loss_last,
                         "train_auc_before": report.train_auc_before,
                         "train_auc_after": report.train_auc_after,
                         "config": report.config}
