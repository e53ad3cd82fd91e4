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
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from app.rac.decision import TraceStep
from app.rac.evaluation import expected_calibration_error, precision_coverage_curve

FEATURES = ("p_yes", "asked", "retrieval_score", "margin", "rank")
MIN_REVIEWS = 30
"""Fewer reviewed decisions than this (or only one outcome among them): no calibrator."""


def features(trace: Sequence[TraceStep | dict], label: str | None) -> list[float] | None:
    """What the engine knew about its chosen label; None when it chose none."""
    steps = [s if isinstance(s, dict) else asdict(s) for s in trace]
    chosen = next((s for s in steps if s["label"] == label), None) if label else None
    if chosen is None:
        return None
    others = [_ranking_score(s) for s in steps if s["label"] != label]
    margin = _ranking_score(chosen) - max(others) if others else 1.0
    asked = chosen.get("p_yes") is not None
    return [float(chosen["p_yes"]) if asked else 0.5, 1.0 if asked else 0.0,
            _ranking_score(chosen), float(margin), float(chosen["rank"])]


def _ranking_score(step: dict) -> float:
    """The score the candidates were ranked by (the learnt scorer's blend when it re-ranked);
    traces stored before `score` existed have only `retrieval_score`."""
    score = step.get("score")
    return float(step["retrieval_score"] if score is None else score)


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
    reference: tuple[float, ...] = ()
    """Held-out calibrated confidences of the decisions it was fitted on (cross-validated):
    the distribution `cutoff_for_precision` reads a target precision from."""
    source: str = "reviews"
    """`reviews` (fitted on a person's decisions) or `schema` (the prior: app/rac/prior.py)."""
    reference_reviews: float = 0.0
    """Reviewed decisions the fit and its `reference` rest on (0: none, e.g. the schema's
    prior, or a reference read from the items themselves). A cutoff keeps the expected
    precision one standard error of a proportion over the reviews above it clear of the
    target (`cutoff_for_precision`)."""

    @property
    def is_identity(self) -> bool:
        return not self.weights

    @property
    def judge_weight(self) -> float:
        """Weight of the judge's P(yes); 0 when the judge was not found to carry information
        (then asking it cannot change a confidence, and the cascade does not ask)."""
        return self.weights[0] if self.weights else 0.0

    def cutoff_for_precision(self, target: float) -> float | None:
        """The lowest cutoff at which the expected precision of the decisions above it (the mean
        calibrated confidence of `reference` at or above it) reaches `target`; None when no
        cutoff does. The expected precision is what a calibrated confidence promises.

        A calibrator fitted on n reviews holds that expected precision, less one standard
        error sqrt(p (1 - p) / m) over the m reviews above the cutoff, to the target: a fit on
        770 reviews is itself an estimate, and without the margin its cutoff delivered 0.934 /
        0.960 / 0.946 / 0.943 on the Banking77 dev split (10 and 20 reviewed per label, two
        seeds), with it 0.945 / 0.967 / 0.954 / 0.951 for 2-4 points fewer accepted
        (docs/results.md, engine v2 round 8). The prior has no reviews and no margin: its
        cutoff read from the items delivered its target there as it is."""
        ref = sorted(self.reference, reverse=True)
        reviews_per_point = self.reference_reviews / len(ref) if ref else 0.0
        best, total = None, 0.0
        for i, conf in enumerate(ref, start=1):
            total += conf
            last_of_tie = i == len(ref) or ref[i] != conf
            if not last_of_tie:
                continue
            expected = total / i
            if reviews_per_point:
                expected -= math.sqrt(max(0.0, expected * (1.0 - expected))
                                      / (i * reviews_per_point))
            if expected >= target:
                best = conf
        return best

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
                      "scale": tuple(data["scale"]),
                      "reference": tuple(data.get("reference", ()))})


IDENTITY = Calibrator()


def _fit_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None
                  ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """L2-regularised logistic regression on standardised features (scikit-learn's
    `LogisticRegression(C=1.0)` objective: intercept not penalised, optional sample weights),
    by Newton's method.

    In numpy rather than scikit-learn: scikit-learn's OpenMP runtime, once loaded, made the
    llama.cpp judge crash (segmentation fault) in the same process.
    """
    w8 = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
    mean = np.average(x, axis=0, weights=w8)
    scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w8))
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    penalty = np.eye(z.shape[1])
    penalty[-1, -1] = 0.0  # the intercept
    beta = np.zeros(z.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -60, 60)))
        gradient = z.T @ (w8 * (p - y)) + penalty @ beta
        hessian = (z * (w8 * p * (1 - p))[:, None]).T @ z + penalty + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta[:-1], float(beta[-1]), mean, scale


JUDGE_MIN_ASKED = 20
"""Fewer decisions with a judge answer than this: the judge's information cannot be measured,
so it gets no weight."""
JUDGE_MIN_GAIN = 0.005
"""Cross-validated log-loss (nats per decision) the judge's P(yes) must save to get a weight: a
judge at chance (the bundled 135M model, AUC 0.48) saves nothing and only adds noise."""


def _held_out(xs: np.ndarray, ys: np.ndarray, folds: int, seed: int,
              weight: np.ndarray | None = None) -> np.ndarray:
    """Cross-validated predictions: each decision scored by a fit that did not see it."""
    order = np.random.default_rng(seed).permutation(len(ys))
    held_out = np.empty(len(ys))
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        if ys[train].min() == ys[train].max():
            held_out[test] = ys[train].mean()
            continue
        w, b, m, s = _fit_logistic(xs[train], ys[train],
                                   None if weight is None else weight[train])
        held_out[test] = 1.0 / (1.0 + np.exp(-((xs[test] - m) / s @ w + b)))
    return held_out


def _log_loss(p: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.average(y * np.log(p) + (1 - y) * np.log(1 - p), weights=weight))


def without_judge(xs: np.ndarray) -> np.ndarray:
    """The same decisions as if the judge had not been asked: its features made constant."""
    out = xs.copy()
    out[:, 0], out[:, 1] = 0.5, 0.0
    return out


REFERENCE_SIZE = 2000
"""Confidences kept for choosing cutoffs: all of them, or this many evenly spaced quantiles."""


def _reference(confidences: np.ndarray, weight: np.ndarray | None = None) -> tuple[float, ...]:
    """The distribution of held-out confidences: all of them, or this many evenly spaced
    quantiles; with weights, quantiles of the weighted distribution (so a decision of weight
    0.1 counts a tenth in the expected precision above a cutoff)."""
    if weight is None:
        values = np.sort(confidences)
        if len(values) > REFERENCE_SIZE:
            values = np.quantile(values, np.linspace(0.0, 1.0, REFERENCE_SIZE))
    else:
        order = np.argsort(confidences, kind="stable")
        cumulative = np.cumsum(weight[order]) / weight.sum()
        at = np.searchsorted(cumulative, np.linspace(0.0, 1.0, REFERENCE_SIZE), side="left")
        values = confidences[order][np.minimum(at, len(order) - 1)]
    return tuple(round(float(p), 4) for p in values)


ITEMS_REFERENCE_MIN = 200
"""Items needed to read a cutoff from their confidences: a 95% target rests on the few least
confident accepted items, so fewer give a noisy cutoff (the prior's own is kept)."""
ITEMS_REFERENCE_SAMPLE = 2000
"""Items read at most for it."""


def with_items_reference(calibrator: Calibrator, confidences: Sequence[float]) -> Calibrator:
    """The calibrator with the confidences of the items about to be labelled as the reference
    its cutoffs are read from (no gold label needed). For a calibrated confidence the precision
    above a cutoff is the mean confidence of those items above it; the schema's probes are
    only a stand-in for them, easier than real items. On the Banking77 train dev split with the
    schema prior, target 0.95: 51.5% accepted at precision 0.949 (the best any cutoff gives
    there: 51.15%) against 46.8% at 0.952 from the probes (bench/prior_cutoff.py)."""
    if calibrator.is_identity or not len(confidences):
        return calibrator
    return replace(calibrator, reference=_reference(np.asarray(confidences, dtype=np.float64)),
                   reference_reviews=0.0, meta={**calibrator.meta, "reference": "items"})


def judge_informative(xs: np.ndarray, ys: np.ndarray, folds: int = 5, seed: int = 0,
                      weight: np.ndarray | None = None) -> bool:
    """Does the judge's P(yes) improve held-out predictions of "the label is right"?"""
    asked = xs[:, 1] > 0
    if asked.sum() < JUDGE_MIN_ASKED or ys[asked].min() == ys[asked].max():
        return False
    with_judge = _log_loss(_held_out(xs, ys, folds, seed, weight), ys, weight)
    alone = _log_loss(_held_out(without_judge(xs), ys, folds, seed, weight), ys, weight)
    return alone - with_judge >= JUDGE_MIN_GAIN


def fit(x: Sequence[Sequence[float]], y: Sequence[bool], version: int,
        folds: int = 5, seed: int = 0, source: str = "reviews",
        weight: Sequence[float] | None = None) -> Calibrator:
    """Fit on labelled decisions (features, was the model right), optionally weighted. Identity
    if too few. The judge's P(yes) keeps a weight only if it measurably improves held-out
    predictions."""
    xs = np.asarray(x, dtype=np.float64).reshape(-1, len(FEATURES))
    ys = np.asarray(y, dtype=np.int64)
    w8 = None if weight is None else np.asarray(weight, dtype=np.float64)
    raw = np.array([IDENTITY.confidence(row.tolist()) for row in xs])
    if len(ys) < MIN_REVIEWS or ys.min() == ys.max():
        return Calibrator(version=version, n_reviews=len(ys), source=source,
                          ece_before=expected_calibration_error(raw.tolist(), ys.tolist()),
                          meta={"reason": "too few reviews, or only one outcome"})
    informative = judge_informative(xs, ys, folds, seed, w8)
    if not informative:
        xs = without_judge(xs)
    # Cross-validated predictions: the ECE "after" is measured on decisions the fit did not see.
    held_out = _held_out(xs, ys, folds, seed, w8)
    w, b, m, s = _fit_logistic(xs, ys, w8)
    if not informative:
        w[0] = w[1] = 0.0  # constant columns: exactly no weight, whatever the solver left
    return Calibrator(version=version, weights=tuple(map(float, w)), bias=b,
                      mean=tuple(map(float, m)), scale=tuple(map(float, s)), n_reviews=len(ys),
                      ece_before=expected_calibration_error(raw.tolist(), ys.tolist()),
                      ece_after=expected_calibration_error(
                          held_out.tolist(), ys.tolist(),
                          weights=None if w8 is None else w8.tolist()),
                      reference=_reference(held_out, w8), source=source,
                      reference_reviews=_effective_count(w8, len(ys)) if source == "reviews"
                      else 0.0,
                      meta={"judge_informative": informative})


def _effective_count(weight: np.ndarray | None, n: int) -> float:
    """Kish's effective sample size of weighted decisions (n when unweighted)."""
    if weight is None:
        return float(n)
    return float(weight.sum() ** 2 / max(float((weight ** 2).sum()), 1e-12))


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
    if len(confidence) < min_support:
        return CutoffChoice(target, None, None, None, len(confidence),
                            f"only {len(confidence)} reviewed model decisions; at least "
                            f"{min_support} are needed to estimate a precision")
    best = None
    for point in precision_coverage_curve(confidence, correct):
        if point.count >= min_support and point.precision >= target:
            best = point
    if best is None:
        pairs = sorted(zip(confidence, correct, strict=True), key=lambda p: -p[0])
        top = sum(bool(ok) for _, ok in pairs[:min_support]) / min_support
        return CutoffChoice(target, None, None, None, 0,
                            f"no cutoff reaches precision {target:.2f} with at least "
                            f"{min_support} reviewed decisions above it (the most confident "
                            f"{min_support} are right {top:.0%} of the time)")
    return CutoffChoice(target, float(best.threshold), best.precision,
                        wilson_interval(best.correct, best.count), best.count)
