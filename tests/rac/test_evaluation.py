"""Evaluation metrics on small cases computed by hand."""

from __future__ import annotations

import pytest

from app.rac.decision import Decision, TraceStep
from app.rac.evaluation import (
    accuracy,
    coverage_at_precision,
    evaluate,
    expected_calibration_error,
    is_correct,
    judge_scores,
    macro_f1,
    mann_whitney_auc,
    percentile,
    precision_coverage,
)

NAMES = {"a", "b", "c"}


def test_correct_means_same_label_or_none_for_out_of_scope_rows():
    assert is_correct("a", "a", NAMES)
    assert not is_correct("a", "b", NAMES)
    assert not is_correct("a", None, NAMES)  # abstaining on an in-scope row is wrong
    assert is_correct("other", None, NAMES)  # gold not in schema: no label is right
    assert is_correct("", None, NAMES)
    assert not is_correct("other", "a", NAMES)
    assert not is_correct("other", "other", NAMES)  # a label outside the schema is never right


def test_accuracy():
    golds = ["a", "b", "c", "zzz"]
    assert accuracy(golds, ["a", "a", None, None], NAMES) == pytest.approx(0.5)
    assert accuracy([], [], NAMES) == 0.0
    with pytest.raises(ValueError):
        accuracy(["a"], [], NAMES)


def test_macro_f1_by_hand():
    golds = ["a", "a", "b", "b"]
    predicted = ["a", "c", "b", "a"]
    # a: tp1 (row0) fp1 (row3) fn1 (row1) -> 0.5; b: tp1 fn1 -> 2/3; c: fp1 -> 0
    assert macro_f1(golds, predicted, NAMES) == pytest.approx((0.5 + 2 / 3 + 0.0) / 3)


def test_macro_f1_none_is_a_class_only_with_out_of_scope_gold():
    # No out-of-scope rows: the abstention costs b a false negative only.
    assert macro_f1(["a", "b"], ["a", None], NAMES) == pytest.approx((1.0 + 0.0) / 2)
    # An out-of-scope row makes "none" a class: none tp1 -> 1; a 1; b fn -> 0.
    assert macro_f1(["a", "b", "x"], ["a", None, None], NAMES) == pytest.approx(
        (1.0 + 0.0 + 2 / 3) / 3)


def test_precision_and_coverage_at_cutoffs():
    correct = [True, True, False, True, False]
    labelled = [True, True, True, True, False]
    conf = [0.9, 0.8, 0.7, 0.4, 0.99]  # the unlabelled item never counts, even at 0.99
    curve = precision_coverage(correct, labelled, conf, cutoffs=[0.0, 0.75, 0.95])
    assert curve[0] == {"cutoff": 0.0, "coverage": 0.8, "precision": 0.75}
    assert curve[1] == {"cutoff": 0.75, "coverage": 0.4, "precision": 1.0}
    assert curve[2] == {"cutoff": 0.95, "coverage": 0.0, "precision": None}


def test_coverage_at_precision_takes_the_largest_coverage_reaching_the_target():
    correct = [True, True, False, True, True, False]
    labelled = [True] * 6
    conf = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    # cumulative precision: 1, 1, 2/3, 3/4, 4/5, 4/6
    assert coverage_at_precision(correct, labelled, conf, 0.95) == {
        "coverage": pytest.approx(2 / 6), "cutoff": 0.8}
    assert coverage_at_precision(correct, labelled, conf, 0.8) == {
        "coverage": pytest.approx(5 / 6), "cutoff": 0.5}
    assert coverage_at_precision([False], [True], [0.9], 0.9) == {"coverage": 0.0,
                                                                  "cutoff": None}


def test_coverage_at_precision_keeps_ties_together():
    # Two items at 0.9, one right one wrong: precision 0.5 at that cutoff, never 1.0.
    assert coverage_at_precision([True, False], [True, True], [0.9, 0.9], 0.9)["coverage"] == 0.0


def test_expected_calibration_error_by_hand():
    # bin [0.9,1.0]: 0.95, 1.0 -> mean 0.975, acc 1/2 -> gap 0.475, weight 2/4
    # bin [0.2,0.3): 0.2, 0.2 -> mean 0.2, acc 0 -> gap 0.2, weight 2/4
    ece = expected_calibration_error([0.95, 1.0, 0.2, 0.2], [True, False, False, False])
    assert ece == pytest.approx(0.5 * 0.475 + 0.5 * 0.2)
    assert expected_calibration_error([0.7, 0.7], [True, True]) == pytest.approx(0.3)
    assert expected_calibration_error([], []) is None


def test_mann_whitney_auc_counts_ties_half():
    assert mann_whitney_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert mann_whitney_auc([0.1], [0.9]) == 0.0
    assert mann_whitney_auc([0.5], [0.5]) == 0.5
    # pairs: (0.6 vs 0.5 win, 0.6 vs 0.6 tie, 0.4 vs 0.5 loss, 0.4 vs 0.6 loss) -> 1.5/4
    assert mann_whitney_auc([0.6, 0.4], [0.5, 0.6]) == pytest.approx(0.375)
    assert mann_whitney_auc([], [0.1]) is None
    assert mann_whitney_auc([0.3], []) is None


def test_percentile_interpolates():
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert percentile([], 50) is None


def _decision(label, confidence, steps, calls=None):
    trace = [TraceStep(name, rank, 0.5, p) for rank, (name, p) in enumerate(steps)]
    d = Decision(label, confidence, "accepted" if label else "no_match", trace)
    d.judge_calls = sum(p is not None for _, p in steps) if calls is None else calls
    return d


def test_judge_scores_split_gold_from_other_asked_candidates():
    decisions = [_decision("a", 0.9, [("a", 0.9), ("b", None)]),
                 _decision("c", 0.6, [("a", 0.2), ("c", 0.6)])]
    pos, neg = judge_scores(["a", "a"], decisions)
    assert pos == [0.9, 0.2] and neg == [0.6]


def test_evaluate_puts_it_together():
    decisions = [_decision("a", 0.9, [("a", 0.9)]),
                 _decision("c", 0.6, [("a", 0.2), ("c", 0.6)]),
                 _decision(None, 0.3, [("b", 0.3), ("c", 0.1)])]
    report = evaluate(["a", "a", "zzz"], decisions, NAMES, seconds=2.0,
                      latencies=[0.1, 0.2, 0.3])
    assert report["n"] == 3
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["llm_calls_per_item"] == pytest.approx(5 / 3)
    assert report["items_per_second"] == pytest.approx(1.5)
    assert report["latency_p50_s"] == pytest.approx(0.2)
    assert report["out_of_scope_rows"] == 1
    assert report["labelled_share"] == pytest.approx(2 / 3)
    # labelled: (0.9, right), (0.6, wrong): bins 0.9 -> gap 0.1, 0.6 -> gap 0.6
    assert report["ece"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.6)
    assert report["coverage_at_precision"]["0.95"] == {"coverage": pytest.approx(1 / 3),
                                                       "cutoff": 0.9}
    # positives 0.9, 0.2; negatives 0.6, 0.3, 0.1 -> wins 3 + 1 = 4 of 6
    assert report["judge_auc"] == pytest.approx(4 / 6)
