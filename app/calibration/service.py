"""Fitting a schema's calibrator from its reviews, and choosing cutoffs for a target precision.

The training data are items the model labelled and a person then reviewed: each one classified
again against the schema's label index as it is now, without the item's own exemplar
(app/rac/review_probes.py), and whether its top label is the reviewed one. The features stored
with the model's decision were computed before that item and the later reviews joined the index:
fitted on them, the calibrator was over-confident on new items (docs/results.md). A reviewed item
without an exemplar in the index (reviewed as "no label", or its label dropped from the current
version) keeps its stored decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from app.calibration import repository
from app.calibration.models import CalibratorVersion
from app.db import session_scope
from app.label_schemas import repository as schemas
from app.label_schemas.index import private_index_for
from app.label_schemas.models import LabelSchema
from app.rac import calibration
from app.rac.calibration import IDENTITY, Calibrator, CutoffChoice, choose_cutoff, features
from app.rac.review_probes import refit_rows
from app.rac.scorer import LearntScorer
from app.runtime import Runtime
from app.scorer import repository as scorers

COVERAGE_SAMPLE = 20_000
"""Model decisions sampled to estimate the coverage at a cutoff (exact below this many)."""


def current(session: Session, schema_id: int) -> Calibrator:
    row = repository.latest(session, schema_id)
    return Calibrator.from_json(row.params) if row is not None else IDENTITY


def reviewed_decisions(session: Session, schema: LabelSchema, runtime: Runtime | None
                       ) -> tuple[list[list[float]], list[bool]]:
    """Features of each reviewed model decision that proposed a label, and was it right: as
    the current index decides it without the item's own exemplar (with a `runtime`;
    app/rac/review_probes.py), else as the model decided it then."""
    rows = repository.reviewed_decision_rows(session, schema.id)
    if runtime is None or not rows:
        x = [features(trace, model) for _, trace, model, _ in rows]
        return ([row for row in x if row is not None],  # type: ignore[misc]
                [model == label for (_, _, model, label), row in zip(rows, x, strict=True)
                 if row is not None])
    index = private_index_for(session, runtime, schema, schemas.get_version(session, schema))
    return refit_rows(index, [str(item_id) for item_id, *_ in rows], [r[1] for r in rows],
                      [r[2] for r in rows], [r[3] for r in rows],
                      runtime.settings.engine.top_k, _scorer_with_held_out_heads(session,
                                                                                 schema.id))


def _scorer_with_held_out_heads(session: Session, schema_id: int) -> LearntScorer | None:
    scorer = scorers.current(session, schema_id)
    return scorers.with_held_out_heads(session, schema_id, scorer) if scorer else None


def refit(session: Session, runtime: Runtime, schema: LabelSchema) -> CalibratorVersion:
    x, y = reviewed_decisions(session, schema, runtime)
    latest = repository.latest_version_number(session, schema.id)
    fitted = calibration.fit(x, y, version=latest + 1)
    row = CalibratorVersion(schema_id=schema.id, version=fitted.version,
                            params=fitted.to_json(), n_reviews=fitted.n_reviews,
                            ece_before=fitted.ece_before, ece_after=fitted.ece_after)
    session.add(row)
    session.flush()
    return row


def _refit_due(session: Session, schema_id: int) -> bool:
    fitted_on = repository.reviews_in_latest(session, schema_id)
    available = repository.count_reviewed_decisions(session, schema_id)
    return available >= calibration.MIN_REVIEWS and available >= fitted_on + max(10,
                                                                                 fitted_on // 10)


def refit_if_due(session: Session, runtime: Runtime, schema: LabelSchema
                 ) -> CalibratorVersion | None:
    """Refit once enough new reviews arrived: the first time at MIN_REVIEWS, then after every
    10% more (at least 10), so the cost stays small however busy the reviewers are.

    Refits of one schema are serialised: two reviews that found a refit due at once both
    inserted the next version on PostgreSQL (a unique violation: 500, and the review lost).
    The schema row is locked (FOR NO KEY UPDATE: it does not wait for the key-share locks the
    reviews' own inserts hold on it) and the question asked again, so the second review sees
    the first one's calibrator and fits only if still due. SQLite runs one writer at a time.
    """
    if not _refit_due(session, schema.id):
        return None
    repository.lock_schema(session, schema.id)
    if not _refit_due(session, schema.id):
        return None
    return refit(session, runtime, schema)


def refit_for_new_scorer(factory: sessionmaker[Session], runtime: Runtime,
                         schema_id: int) -> CalibratorVersion | None:
    """Refit on the same reviews after the learnt scorer was refitted: the reviewed items'
    features come from the new scorer's held-out heads, and the calibrator should describe the
    ranking that new items now get. Runs on the refitter's thread, not in a request."""
    with session_scope(factory) as session:
        schema = schemas.schema_by_id(session, schema_id)
        if schema is None or \
                repository.count_reviewed_decisions(session, schema_id) < calibration.MIN_REVIEWS:
            return None
        repository.lock_schema(session, schema_id)  # one refit at a time (refit_if_due)
        row = refit(session, runtime, schema)
        session.expunge(row)
        return row


@dataclass(frozen=True)
class CutoffAnswer:
    choice: CutoffChoice
    expected_coverage: float | None
    """Share of the schema's model decisions at or above the cutoff."""
    calibrator_version: int


def cutoff_for(session: Session, schema: LabelSchema, target: float,
               runtime: Runtime | None = None) -> CutoffAnswer:
    """Measured on the reviewed items as `reviewed_decisions` classifies them (without a
    `runtime`, e.g. the admin command: as the model decided them)."""
    calibrator = current(session, schema.id)
    x, y = reviewed_decisions(session, schema, runtime)
    choice = choose_cutoff([calibrator.confidence(row) for row in x], y, target)
    coverage = None
    if choice.cutoff is not None:
        coverage = _coverage(session, schema.id, calibrator, choice.cutoff)
    return CutoffAnswer(choice, coverage, calibrator.version)


def _coverage(session: Session, schema_id: int, calibrator: Calibrator,
              cutoff: float) -> float | None:
    """Scored by the current calibrator from each decision's trace, so old decisions count as
    they would be scored now; a random sample above COVERAGE_SAMPLE decisions."""
    confidences = model_decision_confidences(session, schema_id, calibrator, COVERAGE_SAMPLE)
    if not confidences:
        return None
    return sum(c is not None and c >= cutoff for c in confidences) / len(confidences)


def model_decision_confidences(session: Session, schema_id: int, calibrator: Calibrator,
                               limit: int) -> list[float | None]:
    """The confidence `calibrator` gives each of up to `limit` of the schema's model decisions
    (a random sample), scored now from their traces; None for a decision without a label."""
    return [calibrator.confidence_for(trace, label) if label is not None else None
            for trace, label in repository.sample_model_decisions(session, schema_id, limit)]
