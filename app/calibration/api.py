"""API models for calibration and cutoffs."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class CalibrationOut(BaseModel):
    schema_name: str = Field(alias="schema")
    version: int
    """0: no calibrator yet — confidence is the judge's raw P(yes)."""
    fitted: bool
    n_reviews: int
    ece_before: float | None
    """Expected calibration error of raw P(yes) on the reviews."""
    ece_after: float | None
    """Expected calibration error of this calibrator on held-out reviews (5-fold)."""
    features: list[str]
    created_at: datetime | None

    model_config = ConfigDict(populate_by_name=True)


class CutoffOut(BaseModel):
    schema_name: str = Field(alias="schema")
    target_precision: float
    cutoff: float | None
    """The lowest confidence cutoff whose measured precision reaches the target; null when the
    reviews cannot support the target (see `reason`)."""
    precision: float | None
    """Precision measured on the reviewed decisions at or above the cutoff."""
    precision_interval: tuple[float, float] | None
    """95% Wilson interval of that precision."""
    promised: bool
    """The interval's lower end reaches the target."""
    support: int
    expected_coverage: float | None
    """Share of the schema's model decisions that would be labelled at this cutoff."""
    calibrator_version: int
    reason: str | None

    model_config = ConfigDict(populate_by_name=True)
