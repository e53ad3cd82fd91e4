"""The review queue: leases so two reviewers never get the same item, reviewed labels as ground
truth (and exemplars), and quality stats from reviews."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.calibration import service as calibration
from app.db import utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.items.models import Item
from app.label_schemas import repository as schemas
from app.label_schemas.models import LabelSchema, SchemaVersion
from app.labelling import repository as states
from app.labelling import service as labelling
from app.labelling.models import NEEDS_A_PERSON, Annotation, ItemState
from app.rac.evaluation import CurvePoint, precision_coverage_curve
from app.review import repository
from app.runtime import Runtime


@dataclass
class Leased:
    item: Item
    state: ItemState
    annotation: Annotation


def claim(session: Session, principal: Principal, schema: LabelSchema, limit: int,
          lease_seconds: int, exclude: Collection[str] = ()) -> list[Leased]:
    """Lease up to `limit` items that need a person, least confident first; two reviewers never
    hold the same item, and a reviewer's own unexpired leases come back first (a reload shows
    the same items).

    `exclude` (item ids) leaves items out: the ones a reviewer skipped, or already holds and has
    on screen, so asking for "the next one" does not hand back the current one.
    """
    rows = repository.lease(session, principal.key_id, schema, limit,
                            token=secrets.token_hex(16), now=utcnow(),
                            lease_seconds=lease_seconds, exclude=exclude)
    return [Leased(item, state, annotation) for item, state, annotation in rows]


def open_item(session: Session, principal: Principal, schema: LabelSchema, item: Item,
              lease_seconds: int) -> Leased:
    """Lease one chosen item (picked in the items browser, whatever its status) to the caller,
    so they can review or correct it; Conflict while another reviewer holds it. It comes with the
    model's decision (its candidates), or the current one if the model never labelled it."""
    state = repository.state_of(session, item.id, schema.id)
    if state is None:
        raise NotFound(f"item {item.external_id!r} has no label under {schema.name!r}")
    now = utcnow()
    if _leased_by_other(state, principal, now):
        raise Conflict(f"item {item.external_id!r} is being reviewed by someone else until "
                       f"{state.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC")
    state.lease_owner = principal.key_id
    state.lease_token = secrets.token_hex(16)
    state.lease_expires_at = now + timedelta(seconds=lease_seconds)
    session.flush()
    annotation = repository.get_annotation(session,
                                           state.model_annotation_id or state.annotation_id)
    assert annotation is not None  # foreign keys
    return Leased(item, state, annotation)


def release(session: Session, principal: Principal, item: Item,
            schema_name: str | None) -> bool:
    """Give back the caller's lease on an item (a skip), so another reviewer may take it at once
    instead of when the lease expires. Someone else's lease is left alone. True if one was held."""
    schema = schema_for_item(session, principal, item, schema_name)
    return repository.release_lease(session, principal.key_id, item.id, schema.id)


def queue_counts(session: Session, schema: LabelSchema) -> tuple[int, int]:
    """(items that still need a person, items reviewed)."""
    counts = repository.status_counts(session, schema.id)
    return sum(counts.get(s, 0) for s in NEEDS_A_PERSON), counts.get("reviewed", 0)


def schema_for_item(session: Session, principal: Principal, item: Item,
                    name: str | None) -> LabelSchema:
    """The schema named, or the only one the item has a label under."""
    if name is not None:
        return schemas.get_schema(session, principal.project_id, name)
    names = repository.schema_names_of_item(session, item.id)
    if len(names) != 1:
        raise InvalidInput("say which schema this review is for (`schema`): the item has "
                           + (f"labels under {', '.join(sorted(names))}" if names
                              else "no label under any schema yet"))
    return schemas.get_schema(session, principal.project_id, names[0])


@dataclass
class ReviewResult:
    schema: LabelSchema
    annotation: Annotation
    model_label: str | None


def review(session: Session, runtime: Runtime, principal: Principal, item: Item,
           schema_name: str | None, label: str | None, note: str | None,
           labels: list[str] | None = None) -> ReviewResult:
    """Record a person's label (null: none of the schema's labels applies) as ground truth.

    `labels` (several labels, or [] for none) is for multi-label schemas; the first one is the
    item's `label`. Give `label` or `labels`, not both (the API model checks that).
    """
    schema = schema_for_item(session, principal, item, schema_name)
    version = schemas.get_version(session, schema)
    chosen = list(dict.fromkeys(labels)) if labels is not None else ([label] if label else [])
    check_labels(schema, version, chosen)
    state = repository.state_of(session, item.id, schema.id)
    if state is not None and _leased_by_other(state, principal, utcnow()):
        raise Conflict(f"item {item.external_id!r} is being reviewed by someone else until "
                       f"{state.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC")
    model_label = state.model_label if state else None
    annotation = record_review(session, runtime, schema, version, item, chosen,
                               source=principal.key_name, reviewer_key_id=principal.key_id,
                               note=note)
    return ReviewResult(schema, annotation, model_label)


def check_labels(schema: LabelSchema, version: SchemaVersion, labels: list[str]) -> None:
    names = {x["name"] for x in version.content["labels"]}
    if len(labels) > 1 and not version.multi_label:
        raise InvalidInput(f"{schema.name!r} is not a multi-label schema: give one label")
    for name in labels:
        if name not in names:
            raise InvalidInput(f"{name!r} is not a label of {schema.name!r} version "
                               f"{version.version}")


def record_review(session: Session, runtime: Runtime, schema: LabelSchema,
                  version: SchemaVersion, item: Item, labels: list[str], *, source: str,
                  reviewer_key_id: int | None, note: str | None = None,
                  reviewed_at: datetime | None = None) -> Annotation:
    """Store a person's labels (none: no label of the schema applies) as the item's ground truth:
    its current label, an exemplar of the label index, and evidence for calibration. `source`
    names the person; `reviewed_at` is when they decided (default now)."""
    check_labels(schema, version, labels)
    label = labels[0] if labels else None
    now = reviewed_at or utcnow()
    annotation = Annotation(
        project_id=schema.project_id, item_id=item.id, schema_id=schema.id,
        schema_version=version.version, label=label, labels=list(labels),
        confidence=1.0, status="reviewed", source=source[:100],
        reviewer_key_id=reviewer_key_id, note=note, trace=[], created_at=now)
    session.add(annotation)
    session.flush()
    states.upsert_states(session, [{
        "project_id": schema.project_id, "item_id": item.id, "schema_id": schema.id,
        "annotation_id": annotation.id, "schema_version": version.version, "label": label,
        "confidence": 1.0, "status": "reviewed", "updated_at": now,
    }], overwrite_reviewed=True)
    # Ground truth joins the label index as an exemplar: later similar items retrieve it.
    labelling.add_exemplar(session, runtime, schema, item, label)
    # ... and evidence of how often the model is right: refit the calibrator when enough
    # new reviews have arrived (cheap: a logistic regression on a few thousand rows at most).
    calibration.refit_if_due(session, runtime, schema)
    return annotation


def _leased_by_other(state: ItemState, principal: Principal, now: datetime) -> bool:
    return (state.lease_owner is not None and state.lease_owner != principal.key_id
            and state.lease_expires_at is not None and state.lease_expires_at > now)


def candidates_with_descriptions(annotation: Annotation,
                                 version: SchemaVersion) -> list[dict]:
    descriptions = {x["name"]: x["description"] for x in version.content["labels"]}
    return [{"label": step["label"], "description": descriptions.get(step["label"], ""),
             "rank": step["rank"], "retrieval_score": step["retrieval_score"],
             "score": step.get("score", step["retrieval_score"]),
             "p_yes": step.get("p_yes")} for step in annotation.trace or []]


@dataclass
class Stats:
    total: int
    counts: dict[str, int]
    coverage: float | None
    reviewed_model_decisions: int
    agreement: float | None
    precision_at_cutoff: float | None
    reviewed_at_cutoff: int
    per_label: list[dict]


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def stats(session: Session, schema: LabelSchema, cutoff: float) -> Stats:
    counts = repository.status_counts(session, schema.id)
    total = sum(counts.values())
    auto = repository.auto_accepted_count(session, schema.id, cutoff)
    pairs = repository.reviewed_model_decisions(session, schema.id)
    agree = sum(m == h for m, h, _ in pairs)
    confident = [(m, h) for m, h, c in pairs if m is not None and c is not None and c >= cutoff]
    predicted = Counter(m for m, _, _ in pairs if m is not None)
    actual = Counter(h for _, h, _ in pairs if h is not None)
    hits = Counter(m for m, h, _ in pairs if m is not None and m == h)
    per_label = [
        {"label": name, "precision": _ratio(hits[name], predicted[name]),
         "recall": _ratio(hits[name], actual[name]), "predicted": predicted[name],
         "actual": actual[name]}
        for name in sorted(set(predicted) | set(actual))
    ]
    return Stats(
        total=total, counts={s: counts.get(s, 0) for s in
                             ("accepted", "needs_review", "no_match", "reviewed")},
        coverage=_ratio(auto, total), reviewed_model_decisions=len(pairs),
        agreement=_ratio(agree, len(pairs)),
        precision_at_cutoff=_ratio(sum(m == h for m, h in confident), len(confident)),
        reviewed_at_cutoff=len(confident), per_label=per_label)


def reviewed_curve(session: Session, schema: LabelSchema) -> list[CurvePoint]:
    """The precision-coverage curve of the model's labels that people reviewed."""
    pairs = repository.reviewed_model_labels(session, schema.id)
    return precision_coverage_curve([c for c, _ in pairs], [ok for _, ok in pairs])
