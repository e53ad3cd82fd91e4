"""Calibrators, cutoffs from a target precision, and the engine applying them."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from app.rac import calibration
from app.rac.calibration import Calibrator, choose_cutoff, features, fit, wilson_interval
from app.rac.decision import ClassifyParams, TraceStep
from app.rac.engine import Engine
from app.rac.index import LabelIndex
from app.rac.prompts import LabelInfo
from tests.rac.fakes import KeywordEmbedder, ScriptedJudge


def synthetic(n: int, seed: int = 0) -> tuple[list[list[float]], list[bool]]:
    """Decisions whose raw P(yes) (0.1-0.3) says little about how often they are right (about
    half the time): the real chance rises with P(yes) and with the retrieval score."""
    rng = np.random.default_rng(seed)
    x, y = [], []
    for _ in range(n):
        p = rng.uniform(0.1, 0.3)
        score = rng.normal(0.6, 0.1)
        chance = 1 / (1 + np.exp(-(20 * (p - 0.2) + 10 * (score - 0.6))))
        x.append([p, 1.0, score, rng.uniform(0, 0.1), 0.0])
        y.append(bool(rng.random() < chance))
    return x, y


def test_fit_calibrates_and_round_trips_through_json():
    x, y = synthetic(600)
    cal = fit(x, y, version=3)
    assert not cal.is_identity and cal.version == 3 and cal.n_reviews == 600
    assert cal.ece_before > 0.25  # raw P(yes) ~0.2 for items right half of the time
    assert cal.ece_after < 0.08  # measured on held-out folds
    again = Calibrator.from_json(json.loads(json.dumps(cal.to_json())))
    for row in x[:50]:
        assert again.confidence(row) == pytest.approx(cal.confidence(row))
    test_x, test_y = synthetic(2000, seed=1)
    predicted = [cal.confidence(row) for row in test_x]
    from app.rac.evaluation import expected_calibration_error

    assert expected_calibration_error(predicted, test_y) < 0.05


def test_too_few_reviews_or_one_outcome_gives_identity():
    x, y = synthetic(calibration.MIN_REVIEWS - 1)
    assert fit(x, y, version=1).is_identity
    x, _ = synthetic(100)
    assert fit(x, [True] * 100, version=1).is_identity


def test_features_of_the_chosen_label():
    trace = [TraceStep("a", 0, 0.9, p_yes=0.1), TraceStep("b", 1, 0.7, p_yes=0.8),
             TraceStep("c", 2, 0.5)]
    assert features(trace, "b") == pytest.approx([0.8, 1.0, 0.7, 0.7 - 0.9, 1.0])
    assert features(trace, "c") == pytest.approx([0.5, 0.0, 0.5, 0.5 - 0.9, 2.0])
    assert features(trace, None) is None and features(trace, "zz") is None


def test_wilson_interval():
    low, high = wilson_interval(95, 100)
    assert low == pytest.approx(0.8882, abs=1e-3) and high == pytest.approx(0.9785, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_choose_cutoff_takes_the_most_coverage_that_reaches_the_target():
    conf = [0.99] * 40 + [0.9] * 40 + [0.5] * 40
    right = [True] * 40 + [True] * 38 + [False] * 2 + [True] * 20 + [False] * 20
    choice = choose_cutoff(conf, right, target=0.95)
    assert choice.cutoff == 0.9 and choice.support == 80
    assert choice.precision == pytest.approx(78 / 80)
    assert choice.interval[0] < 0.95 < choice.interval[1] and not choice.promised
    strict = choose_cutoff(conf, right, target=0.99)
    assert strict.cutoff == 0.99 and strict.precision == 1.0


def test_choose_cutoff_says_plainly_when_reviews_cannot_support_it():
    few = choose_cutoff([0.9] * 10, [True] * 10, target=0.9)
    assert few.cutoff is None and "only 10 reviewed" in few.reason
    bad = choose_cutoff([0.9] * 50, [False] * 50, target=0.9)
    assert bad.cutoff is None and "no cutoff reaches" in bad.reason


def test_engine_applies_a_calibrator_and_records_its_version():
    emb = KeywordEmbedder(["card", "cash"])
    index = LabelIndex.build([LabelInfo("card", "card"), LabelInfo("cash", "cash")], emb)
    judge = ScriptedJudge({("card card", "card"): 0.3})
    cal = Calibrator(version=7, weights=(10.0, 0, 0, 0, 0), bias=0.0, mean=(0.2, 0, 0, 0, 0),
                     scale=(1, 1, 1, 1, 1))
    params = ClassifyParams(top_k=2, accept_threshold=0.25, cutoff=0.5)
    raw = Engine(emb, judge).classify(["card card"], index, params)[0]
    assert (raw.confidence, raw.status, raw.calibrator_version) == (0.3, "needs_review", None)
    d = Engine(emb, judge).classify(["card card"], index, params, calibrator=cal)[0]
    assert d.label == "card" and d.calibrator_version == 7
    assert d.confidence == pytest.approx(1 / (1 + np.exp(-1.0)))  # sigmoid(10 * (0.3 - 0.2))
    assert d.status == "accepted"
    assert d.trace[0].p_yes == 0.3  # the raw answer stays in the trace


def test_a_cutoff_read_from_the_items_about_to_be_labelled():
    from app.rac.calibration import IDENTITY, Calibrator, with_items_reference

    cal = Calibrator(weights=(0.0, 0.0, 1.0, 0.0, 0.0), mean=(0.0,) * 5, scale=(1.0,) * 5,
                     reference=(0.5,) * 10)
    assert cal.cutoff_for_precision(0.9) is None  # the probes promise nothing so precise
    items = with_items_reference(cal, [0.99] * 50 + [0.5] * 50)
    assert items.cutoff_for_precision(0.9) == 0.99 and items.weights == cal.weights
    assert with_items_reference(IDENTITY, [0.99]) is IDENTITY


def test_a_cutoff_from_reviews_keeps_a_standard_error_of_margin():
    # 100 reference confidences, 40 at 0.99 and 60 at 0.90: all of them average 0.936, so with
    # no reviews behind them (a prior, or the items' own) a 0.93 target admits every one...
    plain = Calibrator(weights=(0.0, 0.0, 1.0, 0.0, 0.0), mean=(0.0,) * 5, scale=(1.0,) * 5,
                       reference=(0.99,) * 40 + (0.90,) * 60)
    assert plain.cutoff_for_precision(0.93) == 0.90
    # ...but fitted on 100 reviews, one standard error over them (sqrt(0.936 * 0.064 / 100) =
    # 0.024) puts 0.936 below 0.93: only the 40 at 0.99 (0.99 - 0.015 >= 0.93) are taken.
    reviewed = replace(plain, reference_reviews=100.0)
    assert reviewed.cutoff_for_precision(0.93) == 0.99
    # the margin shrinks with the reviews behind the reference: 10,000 of them, 0.0024
    assert replace(plain, reference_reviews=10_000.0).cutoff_for_precision(0.93) == 0.90


def test_only_a_calibrator_fitted_on_reviews_counts_its_reviews():
    x, y = synthetic(400)
    weights = [1.0] * 200 + [0.25] * 200
    assert fit(x, y, version=1).reference_reviews == 400
    # weighted reviews count as Kish's effective size
    assert fit(x, y, version=1, weight=weights).reference_reviews == pytest.approx(
        sum(weights) ** 2 / sum(w * w for w in weights))
    prior = fit(x, y, version=1, source="schema")
    assert prior.reference_reviews == 0.0
    cal = fit(x, y, version=1)
    items = calibration.with_items_reference(cal, [0.99] * 300)
    assert items.reference_reviews == 0.0  # the items' own confidences: no reviews behind them
    # a calibrator stored before the margin existed loads without it (no margin)
    stored = cal.to_json()
    del stored["reference_reviews"]
    assert Calibrator.from_json(json.loads(json.dumps(stored))).reference_reviews == 0.0
