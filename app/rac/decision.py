"""The engine's value types: the parameters of a classification and the decision it returns.

Plain data with no behaviour beyond validation, so every caller (API, batch jobs, CLI, evaluation,
calibration) can hold a decision without depending on the engine that made it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Strategy = Literal["cascade", "sequential", "window", "retrieval"]
Status = Literal["accepted", "needs_review", "no_match"]


@dataclass(frozen=True)
class ClassifyParams:
    top_k: int = 5
    """Candidate labels retrieved per item, asked about most similar first."""
    accept_threshold: float = 0.5
    """P(yes) at or above which the judge accepts a candidate."""
    cutoff: float = 0.8
    """Confidence at or above which an accepted label needs no review."""
    target_precision: float | None = None
    """When set, the calibrator turns it into the cutoff (`Calibrator.cutoff_for_precision`);
    `cutoff` is then only the fallback for a calibrator that cannot (identity)."""
    strategy: Strategy = "sequential"
    """`cascade`: retrieval decides what the calibrator is sure of; the judge is asked only
    about the others, and only if it carries information (app/rac/cascade.py).
    `sequential`: one candidate per item per round, stop at the first accept (the paper).
    `window`: `window` candidates per item per round, decided in order (same decisions as
    sequential, fewer rounds, a few more questions). `retrieval`: no judge; the top candidate
    with its retrieval score as confidence (a baseline)."""
    window: int = 3
    multi_label: bool = False
    """Ask about every candidate and keep all that are accepted."""

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= 100:
            raise ValueError("top_k must be between 1 and 100")
        if self.window < 1:
            raise ValueError("window must be at least 1")
        for name in ("accept_threshold", "cutoff"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.target_precision is not None and not 0.0 < self.target_precision < 1.0:
            raise ValueError("target_precision must be between 0 and 1")


@dataclass
class TraceStep:
    """One retrieved candidate and, if the judge was asked about it, its P(yes)."""

    label: str
    rank: int
    retrieval_score: float
    """The label index's similarity score (app/rac/index.py), before any learnt scorer."""
    p_yes: float | None = None
    accepted: bool = False
    score: float | None = None
    """The score the candidates were ranked by: `retrieval_score` blended with the learnt
    scorer's log-probability when one re-ranked them (app/rac/scorer.py), else the same as
    `retrieval_score`. Calibration reads this one."""

    def __post_init__(self) -> None:
        if self.score is None:
            self.score = self.retrieval_score


@dataclass
class Decision:
    label: str | None
    confidence: float
    status: Status
    trace: list[TraceStep]
    labels: list[str] = field(default_factory=list)
    """All accepted labels (multi-label schemas); `[label]` otherwise."""
    judge_calls: int = 0
    model_id: str = ""
    prompt_version: str = ""
    calibrator_version: int | None = None
    """Which calibrator turned the trace into `confidence` (None: raw P(yes); 0: the schema
    prior, app/rac/prior.py)."""
    scorer_version: int | None = None
    """Which learnt scorer re-ranked the candidates (None: retrieval's ranking alone)."""
    cutoff: float | None = None
    """The cutoff the status was decided at (from `target_precision` when one was given)."""
    target_precision: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)
