"""Fitting a schema's calibrator from its reviews, and choosing cutoffs for a target precision.

The training data are items the model labelled and a person then reviewed: the features of the
model's decision (from its stored trace) and whether the person agreed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.calibration.models import CalibratorVersion
from app.label_schemas.models import LabelSchema
from app.labelling.models import Annotation, ItemState
from app.rac import calibration
from app.rac.calibration import IDENTITY, Calibrator, CutoffChoice, choose_cutoff, features

COVERAGE_SAMPLE = 20_000
"""Model decisions sampled to estimate the coverage at a cutoff (exact below this many)."""


def current(session: Session, schema_id: int) -> Calibrator:
    row = session.scalar(select(CalibratorVersion).where(CalibratorVersion.schema_id == schema_id)
                         .order_by(CalibratorVersion.version.desc()).limit(1))
    return Calibrator.from_json(row.params) if row is not None else IDENTITY


def reviewed_decisions(session: Session, schema_id: int) -> tuple[list[list[float]], list[bool]]:
    """Features of each reviewed model decision that proposed a label, and was it right."""
    rows = session.execute(
        select(Annotation.trace, ItemState.model_label, ItemState.label)
        .join(Annotation, Annotation.id == ItemState.model_annotation_id)
        .where(ItemState.schema_id == schema_id, ItemState.status == "reviewed",
               ItemState.model_label.is_not(None))
        .order_by(ItemState.id)).all()
    x, y = [], []
    for trace, model_label, reviewed_label in rows:
        found = features(trace, model_label)
        if found is not None:
            x.append(found)
            y.append(model_label == reviewed_label)
    return x, y


def refit(session: Session, schema: LabelSchema) -> CalibratorVersion:
    x, y = reviewed_decisions(session, schema.id)
    latest = session.scalar(select(func.max(CalibratorVersion.version))
                            .where(CalibratorVersion.schema_id == schema.id)) or 0
    fitted = calibration.fit(x, y, version=latest + 1)
    row = CalibratorVersion(schema_id=schema.id, version=fitted.version,
                            params=fitted.to_json(), n_reviews=fitted.n_reviews,
                            ece_before=fitted.ece_before, ece_after=fitted.ece_after)
    session.add(row)
    session.flush()
    return row


def _refit_due(session: Session, schema_id: int) -> bool:
    fitted_on = session.scalar(select(CalibratorVersion.n_reviews)
                               .where(CalibratorVersion.schema_id == schema_id)
                               .order_by(CalibratorVersion.version.desc()).limit(1)) or 0
    available = session.scalar(select(func.count()).select_from(ItemState).where(
        ItemState.schema_id == schema_id, ItemState.status == "reviewed",
        ItemState.model_label.is_not(None), ItemState.model_annotation_id.is_not(None))) or 0
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
    session.execute(select(LabelSchema.id).where(LabelSchema.id == schema.id)
                    .with_for_update(key_share=True))
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
    rows = session.execute(
        select(Annotation.trace, ItemState.model_label)
        .join(Annotation, Annotation.id == ItemState.model_annotation_id)
        .where(ItemState.schema_id == schema_id)
        .order_by(func.random()).limit(COVERAGE_SAMPLE)).all()
    if not rows:
        return None
    above = sum(label is not None and calibrator.confidence_for(trace, label) >= cutoff
                for trace, label in rows)
    return above / len(rows)
