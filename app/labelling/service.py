"""Running the engine for a project's schema and storing its decisions.

The same functions serve the synchronous classify endpoint and batch jobs; none re-implements an
engine step.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from sqlalchemy.orm import Session

from app.calibration import priors
from app.calibration import service as calibration
from app.db import utcnow
from app.items.models import Item
from app.judges import repository as judges
from app.label_schemas.index import index_for
from app.label_schemas.models import LabelSchema, SchemaVersion
from app.labelling import repository
from app.labelling.models import Exemplar
from app.metrics import count_decisions
from app.rac.calibration import (
    ITEMS_REFERENCE_MIN,
    ITEMS_REFERENCE_SAMPLE,
    Calibrator,
    with_items_reference,
)
from app.rac.decision import ClassifyParams, Decision
from app.rac.engine import Engine
from app.rac.index import LabelIndex
from app.rac.judge import Judge
from app.rac.trained_prompt import TRAINED_ACCEPT_THRESHOLD
from app.runtime import Runtime, make_trained_judge
from app.scorer import repository as scorers

MODEL_SOURCE = "model"


def add_exemplar(session: Session, runtime: Runtime, schema: LabelSchema, item: Item,
                 label: str | None) -> Exemplar:
    vector = runtime.embedder.embed([item.text])[0]
    exemplar = Exemplar(project_id=schema.project_id, schema_id=schema.id, item_id=item.id,
                        label=label, embedder_id=runtime.embedder.model_id,
                        vector=np.asarray(vector, dtype=np.float32).tobytes())
    session.add(exemplar)
    session.flush()
    return exemplar


def classify(session: Session, runtime: Runtime, schema: LabelSchema, version: SchemaVersion,
             texts: Sequence[str], params: ClassifyParams,
             vectors: np.ndarray | None = None) -> list[Decision]:
    index = index_for(session, runtime, schema, version)
    calibrator = calibration.current(session, schema.id)
    scorer = scorers.current(session, schema.id)
    judge = (runtime.judge if params.strategy == "retrieval"  # no judge is asked
             else judge_for_schema(session, runtime, schema.id))
    if calibrator.is_identity:  # no reviews yet: the prior fitted on the schema's examples
        calibrator = with_schema_items_reference(session, schema, prior_for(
            session, runtime, schema, version, index,
            judge if params.strategy == "cascade" else None, params.top_k))
    decisions = engine_for(runtime, judge).classify(
        texts, index, params_for(runtime, judge, params), vectors=vectors, calibrator=calibrator,
        scorer=scorer)
    count_decisions([d.status for d in decisions])
    return decisions


def cutoff_from_items(session: Session, runtime: Runtime, schema: LabelSchema,
                      version: SchemaVersion, texts: Sequence[str], params: ClassifyParams,
                      target: float) -> float | None:
    """The cutoff at which the schema prior's confidences of these items (the ones a job is
    about to label, no gold label used) average `target` above it; None when there is no prior
    to read it from (reviews calibrate the schema: their cutoff is fixed when a job is created).

    For a calibrated confidence the precision above a cutoff is the mean confidence of the items
    above it; the schema's probes the prior reads its cutoff from are easier than real items.
    On Banking77 test, target 0.95: 53.3% accepted at a measured precision of 0.960, against
    46.7% at 0.971 from the probes (docs/results.md, engine v2 round 3). The confidence read is
    the one before any judge question (retrieval's, calibrated)."""
    if not calibration.current(session, schema.id).is_identity:
        return None
    index = index_for(session, runtime, schema, version)
    judge = judge_for_schema(session, runtime, schema.id) if params.strategy == "cascade" \
        else None
    prior = prior_for(session, runtime, schema, version, index, judge, params.top_k)
    if prior.is_identity:
        return None
    decisions = runtime.engine.classify(
        texts, index, replace(params, strategy="retrieval", target_precision=None, cutoff=1.0),
        calibrator=prior, scorer=scorers.current(session, schema.id))
    return with_items_reference(prior, [d.confidence for d in decisions]) \
        .cutoff_for_precision(target)


ITEMS_REFERENCE_SECONDS = 60.0
"""How long a process reuses the schema's items reference before reading it again."""
FEW_ITEMS_SECONDS = 5.0
"""The same while the schema has too few labelled items for one (reading them is cheap then,
and a job that labels hundreds should change the next decisions' cutoff within seconds)."""
_items_references: OrderedDict[tuple, tuple[float, Calibrator]] = OrderedDict()
_items_references_lock = threading.Lock()
_MAX_ITEMS_REFERENCES = 256


def with_schema_items_reference(session: Session, schema: LabelSchema,
                                prior: Calibrator) -> Calibrator:
    """The schema's prior reading its cutoffs from the confidences of the schema's own labelled
    items (a sample of its stored model decisions, scored by this prior) once there are
    ITEMS_REFERENCE_MIN of them, as a job reads its cutoff from its own items: the schema's
    probes are easier than real items, and their cutoff accepts fewer at a precision above the
    one asked (Banking77 test, target 0.95: 46.7% at 0.971 from the probes, 53.3% at 0.960 from
    the items; docs/results.md). The same prior until then. Read again every
    ITEMS_REFERENCE_SECONDS per process (FEW_ITEMS_SECONDS while there are too few), so
    classify requests do not each sample decisions."""
    if prior.is_identity:
        return prior
    # by (row id, creation time): a database emptied and refilled (SQLite reuses ids) never
    # reads another schema's reference; by the prior's parameters, which the confidences are
    # computed with (a prior of another judge or schema version has others)
    key = (schema.id, schema.created_at, prior.bias, prior.weights)
    now = time.monotonic()
    with _items_references_lock:
        found = _items_references.get(key)
        if found is not None and now < found[0]:
            _items_references.move_to_end(key)
            return found[1]
    confidences = [c for c in calibration.model_decision_confidences(
        session, schema.id, prior, ITEMS_REFERENCE_SAMPLE) if c is not None]
    enough = len(confidences) >= ITEMS_REFERENCE_MIN
    read = with_items_reference(prior, confidences) if enough else prior
    with _items_references_lock:  # (when to read it again, the calibrator)
        _items_references[key] = (now + (ITEMS_REFERENCE_SECONDS if enough
                                         else FEW_ITEMS_SECONDS), read)
        _items_references.move_to_end(key)
        while len(_items_references) > _MAX_ITEMS_REFERENCES:
            _items_references.popitem(last=False)
    return read


def prior_for(session: Session, runtime: Runtime, schema: LabelSchema, version: SchemaVersion,
              index: LabelIndex, judge: Judge | None, top_k: int) -> Calibrator:
    """The schema version's prior for this judge: the stored one (fitted in the background
    after the push, app/labelling/prior_fitter.py), else the prior without the judge, which
    asks no judge question. A request never waits for judge questions."""
    key = priors.judge_key(judge)
    found = runtime.priors.remembered(index, top_k, key)
    if found is not None:
        return found
    found = priors.stored(session, schema.id, version.content_hash, key, top_k)
    if found is None:
        return runtime.priors.without_judge(index, top_k)
    runtime.priors.remember(index, top_k, key, found)
    return found


def target_and_cutoff(session: Session, runtime: Runtime, schema: LabelSchema,
                      version: SchemaVersion, target: float | None = None
                      ) -> tuple[float | None, float | None, int | None]:
    """(target precision, the cutoff it implies, calibrator version) for the schema version
    with the default parameters, or for a given `target` (a job's): the reviewed calibrator,
    else the stored prior (None while it is still being fitted)."""
    engine = runtime.settings.engine
    target = target or version.content.get("target_precision") or engine.target_precision
    calibrator: Calibrator | None = calibration.current(session, schema.id)
    if calibrator is None or calibrator.is_identity:
        calibrator = priors.stored(session, schema.id, version.content_hash,
                                   priors.judge_key(prior_judge(session, runtime, schema.id)),
                                   engine.top_k)
        if calibrator is not None:
            calibrator = with_schema_items_reference(session, schema, calibrator)
    if calibrator is None or target is None:
        return target, None, None
    return target, calibrator.cutoff_for_precision(target), calibrator.version


def prior_judge(session: Session, runtime: Runtime, schema_id: int) -> Judge | None:
    """The judge the schema's prior is fitted with: the one the default strategy asks (the
    cascade asks the schema's judge where it carries information; other strategies' confidence
    is calibrated without it)."""
    if runtime.settings.engine.strategy != "cascade":
        return None
    return judge_for_schema(session, runtime, schema_id)


def judge_for_schema(session: Session, runtime: Runtime, schema_id: int) -> Judge:
    """The schema's active trained judge (`rac judge train`), else the default judge."""
    trained = judges.active_judge(session, schema_id)
    if trained is None:
        return runtime.judge
    return make_trained_judge(runtime.settings.data_dir / trained.path, trained.model_id,
                              runtime.settings.llm)


def params_for(runtime: Runtime, judge: Judge, params: ClassifyParams) -> ClassifyParams:
    """A trained judge decides at its own accept threshold, unless the caller chose one: the
    configured default was tuned for the default judge."""
    if judge is runtime.judge or \
            params.accept_threshold != runtime.settings.engine.accept_threshold:
        return params
    return replace(params, accept_threshold=TRAINED_ACCEPT_THRESHOLD)


def engine_for(runtime: Runtime, judge: Judge) -> Engine:
    """An engine asking `judge` (the shared engine when it is the default judge)."""
    return runtime.engine if judge is runtime.judge else Engine(runtime.embedder, judge)


def record_decisions(session: Session, schema: LabelSchema, version: SchemaVersion,
                     items: Sequence[Item], decisions: Sequence[Decision],
                     job_id: int | None = None) -> list[Decision]:
    """Store each decision as an annotation and make it the item's current model decision.

    A reviewed item keeps its reviewed label: a person's decision is ground truth. Within a job
    an item gets one annotation however often its chunk runs: rows that exist already are
    skipped. Returns the decisions that were written.
    """
    now = utcnow()
    rows = [
        {"project_id": schema.project_id, "item_id": item.id, "schema_id": schema.id,
         "schema_version": version.version, "label": d.label, "labels": d.labels,
         "confidence": d.confidence, "status": d.status, "source": MODEL_SOURCE,
         "model_id": d.model_id or None, "prompt_version": d.prompt_version or None,
         "calibrator_version": d.calibrator_version, "scorer_version": d.scorer_version,
         "trace": [vars(step) for step in d.trace], "job_id": job_id, "created_at": now}
        for item, d in zip(items, decisions, strict=True)
    ]
    if not rows:
        return []
    annotation_of = repository.insert_annotations(session, rows)
    kept = [(row, d) for row, d in zip(rows, decisions, strict=True)
            if row["item_id"] in annotation_of]
    repository.upsert_states(session, [
        {"project_id": schema.project_id, "item_id": row["item_id"], "schema_id": schema.id,
         "annotation_id": annotation_of[row["item_id"]], "schema_version": version.version,
         "label": row["label"], "confidence": row["confidence"], "status": row["status"],
         "model_label": row["label"], "model_confidence": row["confidence"],
         "model_status": row["status"], "model_annotation_id": annotation_of[row["item_id"]],
         "updated_at": now}
        for row, _ in kept
    ])
    return [d for _, d in kept]
