"""Metrics of a labelling run against gold labels: small pure functions, no web or database.

Conventions, used by every function here:

- A gold label that is not in the schema (or is empty) marks an out-of-scope row: the right answer
  is *no label*. A prediction is correct when it equals an in-schema gold label, or when it is
  `None` for an out-of-scope row.
- Confidence is a statement about the predicted label, so the precision/coverage curve and the
  calibration error look only at items that received a label; an item without a label is never
  "covered" at any cutoff. Coverage is a share of *all* items.
- The judge's AUC pools every (item, candidate) question the judge was asked: P(yes) for the gold
  label is a positive, P(yes) for any other candidate a negative (Mann-Whitney, ties count 0.5).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from app.rac.decision import Decision

DEFAULT_CUTOFFS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(20)) + (
    0.96, 0.97, 0.98, 0.99)
PRECISION_TARGETS: tuple[float, ...] = (0.90, 0.95)
CALIBRATION_BINS = 10


def gold_in_scope(gold: str | None, label_names: Collection[str]) -> str | None:
    """The gold label if the schema has it, else None (the row should get no label)."""
    return gold if gold and gold in label_names else None


def is_correct(gold: str | None, predicted: str | None, label_names: Collection[str]) -> bool:
    target = gold_in_scope(gold, label_names)
    return predicted == target


def accuracy(golds: Sequence[str | None], predicted: Sequence[str | None],
             label_names: Collection[str]) -> float:
    _same_length(golds, predicted)
    if not golds:
        return 0.0
    return sum(is_correct(g, p, label_names) for g, p in zip(golds, predicted, strict=True)) \
        / len(golds)


def macro_f1(golds: Sequence[str | None], predicted: Sequence[str | None],
             label_names: Collection[str]) -> float:
    """Unweighted mean F1 over the classes that occur in gold or in the predictions.

    "No label" is a class only when some gold row is out of scope: otherwise abstaining is already
    paid for as a missed gold label (a false negative) and is not counted a second time as a class
    with F1 zero.
    """
    _same_length(golds, predicted)
    targets = [gold_in_scope(g, label_names) for g in golds]
    classes: set[str | None] = {t for t in targets} | {p for p in predicted}
    if None not in targets:
        classes.discard(None)
    if not classes:
        return 0.0
    scores = []
    for cls in classes:
        tp = sum(t == cls and p == cls for t, p in zip(targets, predicted, strict=True))
        fp = sum(t != cls and p == cls for t, p in zip(targets, predicted, strict=True))
        fn = sum(t == cls and p != cls for t, p in zip(targets, predicted, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    # fsum: exact, so the result does not depend on the (hash-seeded) order of the set.
    return math.fsum(scores) / len(scores)


@dataclass(frozen=True)
class CurvePoint:
    """Label automatically every item the model gave at least `threshold`: `count` items,
    `correct` of them right; `coverage` = count / all items, `precision` = correct / count."""

    threshold: float
    coverage: float
    precision: float
    count: int
    correct: int = 0


def precision_coverage_curve(confidence: Sequence[float], correct: Sequence[bool],
                             total: int | None = None) -> list[CurvePoint]:
    """The precision-coverage curve: one point per distinct confidence, the highest threshold
    (lowest coverage) first. Items of equal confidence enter together: no cutoff separates them.

    The one place this curve is computed (evaluation, calibration cutoffs, the review dashboard).
    `total` is what coverage is a share of (default: the items given); pass all items to count
    items without a label as never covered.
    """
    _same_length(confidence, correct)
    ordered = sorted(zip(confidence, correct, strict=True), key=lambda p: -p[0])
    n = len(ordered) if total is None else total
    points: list[CurvePoint] = []
    right = 0
    for i, (conf, ok) in enumerate(ordered, start=1):
        right += bool(ok)
        if i < len(ordered) and ordered[i][0] == conf:
            continue  # not the last of a tie
        points.append(CurvePoint(conf, i / n, right / i, i, right))
    return points


def point_at(curve: Sequence[CurvePoint], cutoff: float) -> CurvePoint | None:
    """Where a cutoff sits on the curve: the point of the lowest threshold still >= cutoff
    (None when no item is that confident)."""
    at = [p for p in curve if p.threshold >= cutoff]
    return at[-1] if at else None


def labelled_curve(correct: Sequence[bool], labelled: Sequence[bool],
                   confidence: Sequence[float]) -> list[CurvePoint]:
    """The curve of the items that received a label, coverage a share of all items."""
    _same_length(correct, labelled, confidence)
    kept = [(conf, c) for c, lab, conf in zip(correct, labelled, confidence, strict=True) if lab]
    return precision_coverage_curve([conf for conf, _ in kept], [c for _, c in kept],
                                    total=len(correct))


def precision_coverage(correct: Sequence[bool], labelled: Sequence[bool],
                       confidence: Sequence[float], cutoffs: Sequence[float] = DEFAULT_CUTOFFS
                       ) -> list[dict[str, Any]]:
    """For each cutoff: coverage = share of all items labelled with confidence >= cutoff, and
    precision = share of those that are correct (None when nothing is covered)."""
    curve = labelled_curve(correct, labelled, confidence)
    out = []
    for cutoff in cutoffs:
        point = point_at(curve, cutoff)
        out.append({
            "cutoff": cutoff,
            "coverage": point.coverage if point else 0.0,
            "precision": point.precision if point else None,
        })
    return out


def coverage_at_precision(correct: Sequence[bool], labelled: Sequence[bool],
                          confidence: Sequence[float], target: float
                          ) -> dict[str, float | None]:
    """The largest coverage whose precision reaches `target`, over every confidence cutoff.

    Items of equal confidence cannot be split by a cutoff, so they enter together. Returns the
    coverage (0.0 when no cutoff reaches the target) and the cutoff that gives it (None then).
    """
    best: dict[str, float | None] = {"coverage": 0.0, "cutoff": None}
    for point in labelled_curve(correct, labelled, confidence):
        if point.precision >= target - 1e-12:
            best = {"coverage": point.coverage, "cutoff": point.threshold}
    return best


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool],
                               bins: int = CALIBRATION_BINS,
                               weights: Sequence[float] | None = None) -> float | None:
    """Sum over equal-width confidence bins of (share of items) x |accuracy - mean confidence|,
    each item counted with its weight (1 by default).

    Bin b holds confidences in [b/bins, (b+1)/bins); 1.0 goes in the last bin. None if no items.
    """
    _same_length(confidence, correct)
    if not confidence:
        return None
    weights = [1.0] * len(confidence) if weights is None else weights
    totals = [[0.0, 0.0, 0.0] for _ in range(bins)]  # weight, weighted confidence, correct
    for conf, ok, w in zip(confidence, correct, weights, strict=True):
        b = min(bins - 1, max(0, int(math.floor(conf * bins))))
        totals[b][0] += w
        totals[b][1] += w * conf
        totals[b][2] += w * int(ok)
    n = sum(weights)
    return sum(count / n * abs(hits / count - conf_sum / count)
               for count, conf_sum, hits in totals if count)


def mann_whitney_auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """P(a positive scores above a negative), ties counted 0.5; None without both kinds."""
    if not positives or not negatives:
        return None
    # Rank-sum form: O(n log n) instead of comparing every pair.
    values = sorted([(v, 1) for v in positives] + [(v, 0) for v in negatives])
    rank_sum = 0.0
    i = 0
    while i < len(values):
        j = i
        while j < len(values) and values[j][0] == values[i][0]:
            j += 1
        average_rank = (i + 1 + j) / 2  # ranks i+1..j share their mean
        rank_sum += average_rank * sum(flag for _, flag in values[i:j])
        i = j
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def judge_scores(golds: Sequence[str | None], decisions: Sequence[Decision]
                 ) -> tuple[list[float], list[float]]:
    """P(yes) of the gold label (positives) and of every other asked candidate (negatives)."""
    _same_length(golds, decisions)
    positives: list[float] = []
    negatives: list[float] = []
    for gold, decision in zip(golds, decisions, strict=True):
        for step in decision.trace:
            if step.p_yes is None:
                continue
            (positives if step.label == gold else negatives).append(step.p_yes)
    return positives, negatives


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation percentile (numpy's default), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def evaluate(golds: Sequence[str | None], decisions: Sequence[Decision],
             label_names: Collection[str], *, seconds: float,
             latencies: Sequence[float] | None = None,
             cutoffs: Sequence[float] = DEFAULT_CUTOFFS) -> dict[str, Any]:
    """Every metric of one run. `seconds` is the wall time of the whole run; `latencies` one
    number per item (seconds) for the percentiles."""
    _same_length(golds, decisions)
    names = set(label_names)
    predicted = [d.label for d in decisions]
    correct = [is_correct(g, p, names) for g, p in zip(golds, predicted, strict=True)]
    labelled = [p is not None for p in predicted]
    confidence = [float(d.confidence) for d in decisions]
    n = len(golds)
    positives, negatives = judge_scores(golds, decisions)
    lat = list(latencies or [])
    return {
        "n": n,
        "accuracy": accuracy(golds, predicted, names),
        "macro_f1": macro_f1(golds, predicted, names),
        "labelled_share": sum(labelled) / n if n else 0.0,
        "out_of_scope_rows": sum(gold_in_scope(g, names) is None for g in golds),
        "precision_coverage": precision_coverage(correct, labelled, confidence, cutoffs),
        "coverage_at_precision": {
            f"{t:.2f}": coverage_at_precision(correct, labelled, confidence, t)
            for t in PRECISION_TARGETS},
        "ece": expected_calibration_error(
            [c for c, lab in zip(confidence, labelled, strict=True) if lab],
            [ok for ok, lab in zip(correct, labelled, strict=True) if lab]),
        "llm_calls_per_item": sum(d.judge_calls for d in decisions) / n if n else 0.0,
        "seconds": seconds,
        "items_per_second": n / seconds if seconds > 0 else None,
        "latency_p50_s": percentile(lat, 50),
        "latency_p95_s": percentile(lat, 95),
        "judge_auc": mann_whitney_auc(positives, negatives),
        "judge_questions": {"gold": len(positives), "other": len(negatives)},
    }


def _same_length(*sequences: Sequence[Any]) -> None:
    if len({len(s) for s in sequences}) > 1:
        raise ValueError(f"sequences differ in length: {[len(s) for s in sequences]}")
