"""Engine control flow with a scripted judge: order of questions, stopping, statuses, strategies."""

from __future__ import annotations

import pytest

from app.rac.decision import ClassifyParams
from app.rac.engine import Engine
from app.rac.index import LabelIndex
from app.rac.prompts import LabelInfo
from tests.rac.fakes import KeywordEmbedder, ScriptedJudge

LABELS = [
    LabelInfo("card", "card card card"),
    LabelInfo("cash", "cash cash cash"),
    LabelInfo("fee", "fee fee fee"),
    LabelInfo("refund", "refund refund refund"),
]
EMBEDDER = KeywordEmbedder(["card", "cash", "fee", "refund"])
INDEX = LabelIndex.build(LABELS, EMBEDDER)
# Retrieval order for this text: card, cash, fee, refund.
TEXT = "card card card cash cash fee"


def run(answers, **params):
    judge = ScriptedJudge(answers)
    decisions = Engine(EMBEDDER, judge).classify([TEXT], INDEX, ClassifyParams(**params))
    return decisions[0], judge


def test_retrieval_order_is_most_similar_first():
    decision, _ = run({}, top_k=4, strategy="retrieval")
    assert [s.label for s in decision.trace] == ["card", "cash", "fee", "refund"]
    scores = [s.retrieval_score for s in decision.trace]
    assert scores == sorted(scores, reverse=True)


def test_sequential_stops_at_first_accepted_label():
    decision, judge = run({(TEXT, "cash"): 0.9, (TEXT, "fee"): 0.95}, top_k=4, cutoff=0.8)
    assert decision.label == "cash" and decision.status == "accepted"
    assert decision.confidence == pytest.approx(0.9)
    assert judge.history == [[(TEXT, "card")], [(TEXT, "cash")]]  # one label at a time
    assert decision.judge_calls == 2
    assert [s.p_yes for s in decision.trace] == [0.0, 0.9, None, None]
    assert [s.accepted for s in decision.trace] == [False, True, False, False]
    assert decision.model_id == "scripted" and decision.prompt_version


def test_below_cutoff_needs_review_and_no_accept_is_no_match():
    decision, _ = run({(TEXT, "card"): 0.6}, top_k=3, cutoff=0.8)
    assert (decision.label, decision.status) == ("card", "needs_review")
    decision, judge = run({(TEXT, "fee"): 0.3}, top_k=3)
    assert decision.label is None and decision.status == "no_match"
    assert decision.confidence == pytest.approx(0.3)  # the best rejected P(yes)
    assert len(judge.history) == 3  # asked every candidate


def test_window_gives_the_same_decisions_in_fewer_rounds():
    answers = {(TEXT, "fee"): 0.7, (TEXT, "refund"): 0.99}
    sequential, seq_judge = run(answers, top_k=4)
    windowed, win_judge = run(answers, top_k=4, strategy="window", window=2)
    assert (windowed.label, windowed.confidence) == (sequential.label, sequential.confidence)
    assert len(seq_judge.history) == 3 and len(win_judge.history) == 2
    assert windowed.judge_calls == 4  # it asked refund too, and says so in the trace


def test_multi_label_keeps_every_accepted_candidate():
    decision, _ = run({(TEXT, "card"): 0.9, (TEXT, "fee"): 0.6}, top_k=4, multi_label=True,
                      cutoff=0.8)
    assert decision.labels == ["card", "fee"]
    assert decision.status == "needs_review"  # the weakest accepted label is below the cutoff
    assert decision.confidence == pytest.approx(0.6)


def test_questions_are_batched_across_items():
    texts = [TEXT, "refund refund", "fee fee"]
    judge = ScriptedJudge({("refund refund", "refund"): 0.9})
    Engine(EMBEDDER, judge).classify(texts, INDEX, ClassifyParams(top_k=2))
    assert [len(batch) for batch in judge.history] == [3, 2]  # round 1: all, round 2: undecided


@pytest.mark.parametrize("bad", [{"top_k": 0}, {"cutoff": 1.5}, {"accept_threshold": -0.1},
                                 {"window": 0}])
def test_contradictory_parameters_are_refused(bad):
    with pytest.raises(ValueError):
        ClassifyParams(**bad)
