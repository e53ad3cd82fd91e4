"""Fitting a schema's calibrator from its reviews, and choosing cutoffs for a target precision.

The training data are items the model labelled and a person then reviewed: the features of the
model's decision (from its stored trace) and whether the person agreed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.calibration import repository
from app.calibration.models import CalibratorVersion
from app.label_schemas.models import LabelSchema
from app.rac import calibration
from app.rac.calibration import IDENTITY, Calibrator, CutoffChoice, choose_cutoff, features

COVERAGE_SAMPLE = 20_000
"""Model decisions sampled to estimate the coverage at a cutoff (exact below this many)."""


def current(session: Session, schema_id: int) -> Calibrator:
    row = repository.latest(session, schema_id)
    return Calibrator.from_json(row.params) if row is not None else IDENTITY


def reviewed_decisions(session: Session, schema_id: int) -> tuple[list[list[float]], list[bool]]:
    """Features of each reviewed model decision that proposed a label, and was it right."""
    rows = repository.reviewed_decision_rows(session, schema_id)
    x, y = [], []
    for trace, model_label, reviewed_label in rows:
        found = features(trace, model_label)
        if found is not None:
            x.append(found)
            y.append(model_label == reviewed_label)
    return x, y


def refit(session: Session, schema: LabelSchema) -> CalibratorVersion:
    x, y = reviewed_decisions(session, schema.id)
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


def refit_if_due(session: Session, schema: LabelSchema) -> CalibratorVersion | None:
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
    return refit(session, schema)


@dataclass(frozen=True)
class CutoffAnswer:
    choice: CutoffChoice
    expected_coverage: float | None
    """Share of the schema's model decisions at or above the cutoff."""
    calibrator_version: int


def cutoff_for(session: Session, schema: LabelSchema, target: float) -> CutoffAnswer:
    calibrator = current(session, schema.id)
    x, y = reviewed_decisions(session, schema.id)
    choice = choose_cutoff([calibrator.confidence(row) for row in x], y, target)
    coverage = None
    if choice.cutoff is not None:
        coverage = _coverage(session, schema.id, calibrator, choice.cutoff)
    return CutoffAnswer(choice, coverage, calibrator.version)


def _coverage(session: Session, schema_id: int, calibrator: Calibrator,
              cutoff: float) -> float | None:
    """Scored by the current calibrator from each decision's trace, so old decisions count as
    they would be scored now; a random sample above COVERAGE_SAMPLE decisions."""
    rows = repository.sample_model_decisions(session, schema_id, COVERAGE_SAMPLE)
    if not rows:
        return None
    above = sum(label is not None and calibrator.confidence_for(trace, label) >= cutoff
                for trace, label in rows)
    return above / len(rows)
