"""Calibrated confidence: "the probability that this label is right", learnt from reviews.

The judge's raw P(yes) is not a probability of being right (the bundled 135M model gives every
label about 0.2). A calibrator maps what the engine saw when it chose a label — the judge's P(yes),
the label's retrieval score, its margin over the next candidate, its rank — to the probability
that a person agrees, fitted by logistic regression on the schema's reviewed decisions.

Calibrators are plain parameters (JSON), applied without scikit-learn, and versioned: every
annotation records which one produced its confidence. Choosing a cutoff for a target precision
(with a Wilson interval, or "too few reviews") lives here too, so the API, jobs and the
evaluation harness answer the question the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from app.rac.decision import TraceStep
from app.rac.evaluation import expected_calibration_error

FEATURES = ("p_yes", "asked", "retrieval_score", "margin", "rank")
MIN_REVIEWS = 30
"""Fewer reviewed decisions than this (or only one outcome among them): no calibrator."""


def features(trace: Sequence[TraceStep | dict], label: str | None) -> list[float] | None:
    """What the engine knew about its chosen label; None when it chose none."""
    steps = [s if isinstance(s, dict) else asdict(s) for s in trace]
    chosen = next((s for s in steps if s["label"] == label), None) if label else None
    if chosen is None:
        return None
    others = [s["retrieval_score"] for s in steps if s["label"] != label]
    margin = chosen["retrieval_score"] - max(others) if others else 1.0
    asked = chosen.get("p_yes") is not None
    return [float(chosen["p_yes"]) if asked else 0.5, 1.0 if asked else 0.0,
            float(chosen["retrieval_score"]), float(margin), float(chosen["rank"])]


@dataclass(frozen=True)
class Calibrator:
    """sigmoid(w . (x - mean) / scale + b); identity on P(yes) when `weights` is empty."""

    version: int = 0
    weights: tuple[float, ...] = ()
    bias: float = 0.0
    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    n_reviews: int = 0
    ece_before: float | None = None
    ece_after: float | None = None
    """Expected calibration error of raw P(yes) and of this calibrator, on held-out reviews
    (cross-validated when fitted)."""
    meta: dict = field(default_factory=dict)

    @property
    def is_identity(self) -> bool:
        return not self.weights

    def confidence_for(self, trace: Sequence[TraceStep | dict], label: str) -> float:
        x = features(trace, label)
        return self.confidence(x) if x is not None else 0.0

    def confidence(self, x: Sequence[float]) -> float:
        if self.is_identity:
            return float(x[0]) if x[1] else float(x[2])  # P(yes), or the retrieval score
        z = self.bias + sum(w * (v - m) / s for w, v, m, s in
                            zip(self.weights, x, self.mean, self.scale, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Calibrator:
        return cls(**{**data, "weights": tuple(data["weights"]), "mean": tuple(data["mean"]),
                      "scale": tuple(data["scale"])})


IDENTITY = Calibrator()


def _fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, np.ndarray,
                                                        np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=1.0, max_iter=1000).fit((x - mean) / scale, y)
    return model.coef_[0], float(model.intercept_[0]), mean, scale


def fit(x: Sequence[Sequence[float]], y: Sequence[bool], version: int,
        folds: int = 5, seed: int = 0) -> Calibrator:
    """Fit on reviewed decisions (features, was the model right). Identity if too few."""
    xs = np.asarray(x, dtype=np.float64).reshape(-1, len(FEATURES))
    ys = np.asarray(y, dtype=np.int64)
    raw = np.array([IDENTITY.confidence(row.tolist()) for row in xs])
    if len(ys) < MIN_REVIEWS or ys.min() == ys.max():
        return Calibrator(version=version, n_reviews=len(ys),
                          ece_before=expected_calibration_error(raw.tolist(), ys.tolist()),
                          meta={"reason": "too few reviews, or only one outcome"})
    # Cross-validated predictions: the ECE "after" is measured on reviews the fit did not see.
    order = np.random.default_rng(seed).permutation(len(ys))
    held_out = np.empty(len(ys))
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        if ys[train].min() == ys[train].max():
            held_out[test] = ys[train].mean()
            continue
        w, b, m, s = _fit_logistic(xs[train], ys[train])
        held_out[test] = 1.0 / (1.0 + np.exp(-((xs[test] - m) / s @ w + b)))
    w, b, m, s = _fit_logistic(xs, ys)
    return Calibrator(version=version, weights=tuple(map(float, w)), bias=b,
                      mean=tuple(map(float, m)), scale=tuple(map(float, s)), n_reviews=len(ys),
                      ece_before=expected_calibration_error(raw.tolist(), ys.tolist()),
                      ece_after=expected_calibration_error(held_out.tolist(), ys.tolist()))


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (sound at small n and near 0 or 1)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class CutoffChoice:
    target: float
    cutoff: float | None
    """None: the reviews cannot support the target (see `reason`)."""
    precision: float | None
    interval: tuple[float, float] | None
    support: int
    """Reviewed decisions at or above the cutoff: what the precision is measured on."""
    reason: str | None = None

    @property
    def promised(self) -> bool:
        """The lower end of the 95% interval reaches the target."""
        return self.interval is not None and self.interval[0] >= self.target


def choose_cutoff(confidence: Sequence[float], correct: Sequence[bool], target: float,
                  min_support: int = MIN_REVIEWS) -> CutoffChoice:
    """The lowest cutoff (most coverage) whose measured precision reaches `target`, counting
    only cutoffs with at least `min_support` reviewed decisions at or above them."""
    pairs = sorted(zip(confidence, correct, strict=True), key=lambda p: -p[0])
    if len(pairs) < min_support:
        return CutoffChoice(target, None, None, None, len(pairs),
                            f"only {len(pairs)} reviewed model decisions; at least "
                            f"{min_support} are needed to estimate a precision")
    best = None
    right = 0
    for i, (conf, ok) in enumerate(pairs, start=1):
        right += bool(ok)
        last_of_tie = i == len(pairs) or pairs[i][0] != conf
        if last_of_tie and i >= min_support and right / i >= target:
            best = (conf, right, i)
    if best is None:
        top = sum(bool(ok) for _, ok in pairs[:min_support]) / min_support
        return CutoffChoice(target, None, None, None, 0,
                            f"no cutoff reaches precision {target:.2f} with at least "
                            f"{min_support} reviewed decisions above it (the most confident "
                            f"{min_support} are right {top:.0%} of the time)")
    conf, right, n = best
    return CutoffChoice(target, float(conf), right / n, wilson_interval(right, n), n)
