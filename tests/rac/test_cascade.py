"""The schema prior and the cascade with the real bundled embedder on part of the Banking77 schema;
judges are real subclasses of `Judge` (an oracle and a coin-flipper) so the test controls what
they know."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from app.cli.files import load_schema
from app.rac.calibration import Calibrator
from app.rac.decision import ClassifyParams
from app.rac.embedder import SentenceTransformerEmbedder
from app.rac.engine import Engine
from app.rac.index import LabelIndex
from app.rac.judge import Judge
from app.rac.prior import fit_prior, schema_decisions
from app.rac.prompts import Question

SCHEMA = Path(__file__).parents[2] / "schemas" / "banking77.yaml"
ITEMS = [  # (text, gold label): real-sounding messages, none of them a schema example
    ("My new card still has not come in the post, where is it?", "card_arrival"),
    ("How can I add my card to the app?", "card_linking"),
    ("What rate do you use when converting currencies?", "exchange_rate"),
    ("I was charged a weird extra pound on my statement", "extra_charge_on_statement"),
    ("hi", "card_arrival"),
    ("something is wrong", "card_linking"),
    ("money", "exchange_rate"),
]


class OracleJudge(Judge):
    """Says yes exactly to the right label (known for the schema's examples and ITEMS)."""

    model_id = "oracle"

    def __init__(self, gold: dict[str, str]) -> None:
        super().__init__()
        self.gold = gold
        self.asked: list[str] = []

    def _p_yes(self, questions: list[Question]) -> list[float]:
        self.asked.extend(q.text for q in questions)
        return [0.95 if self.gold.get(q.text) == q.label.name else 0.05 for q in questions]


class CoinJudge(Judge):
    """P(yes) uniformly at random: carries no information at all."""

    model_id = "coin"

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.rng = random.Random(seed)
        self.asked: list[str] = []

    def _p_yes(self, questions: list[Question]) -> list[float]:
        self.asked.extend(q.text for q in questions)
        return [self.rng.random() for _ in questions]


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    _, _, labels, _ = load_schema(SCHEMA)
    labels = labels[:25]  # 50 examples: enough for a prior, quick to embed
    embedder = SentenceTransformerEmbedder(None)
    index = LabelIndex.build(labels, embedder)
    gold = {ex.strip(): label.name for label in labels for ex in label.examples}
    gold.update(dict(ITEMS))
    return embedder, index, gold


def test_calibrated_from_the_schema_alone(world):
    _, index, _ = world
    texts, traces, right = schema_decisions(index, 5)
    assert len(texts) == 50 and 0 < sum(right) < 50  # each example left out of its own label
    for text, trace in zip(texts, traces, strict=True):
        assert all(step.retrieval_score < 0.999 for step in trace), text  # not found itself
    prior = fit_prior(index, 5)
    assert not prior.is_identity and prior.source == "schema" and prior.version == 0
    assert prior.judge_weight == 0.0  # no judge asked: it gets no weight
    assert prior.ece_after is not None and prior.ece_after < 0.15  # held-out on its examples
    margin = 3  # a clearer lead over the next label means more likely right
    assert prior.weights[margin] > 0
    assert len(prior.reference) == 50


def test_target_precision_becomes_a_cutoff(world):
    embedder, index, _ = world
    prior = fit_prior(index, 5)
    loose, strict = prior.cutoff_for_precision(0.7), prior.cutoff_for_precision(0.95)
    assert loose is not None and (strict is None or strict > loose)
    # the expected precision of what the cutoff keeps reaches the target
    kept = [p for p in prior.reference if p >= loose]
    assert sum(kept) / len(kept) >= 0.7
    assert Calibrator(weights=(0.0,) * 5, mean=(0.0,) * 5, scale=(1.0,) * 5,
                      reference=(0.99, 0.97, 0.5, 0.2)).cutoff_for_precision(0.9) == 0.97
    decisions = Engine(embedder, None).classify(
        [t for t, _ in ITEMS], index,
        ClassifyParams(strategy="retrieval", target_precision=0.7, cutoff=0.123),
        calibrator=prior)
    for d in decisions:
        assert d.cutoff == loose and d.target_precision == 0.7 and d.calibrator_version == 0
        assert (d.status == "accepted") == (d.confidence >= loose)


def test_cascade_never_asks_the_judge_about_a_sure_item(world):
    embedder, index, gold = world
    judge = OracleJudge(gold)
    # a strict target for the probe sends more examples to the judge (enough to measure it)
    prior = fit_prior(index, 5, judge, target_precision=0.99)
    assert prior.judge_weight > 0 and prior.meta["judge_informative"]
    judge.asked.clear()
    texts = [t for t, _ in ITEMS]
    before = Engine(embedder, None).classify(texts, index, ClassifyParams(strategy="retrieval"),
                                             calibrator=prior)  # confidence without the judge
    cutoff = sorted(d.confidence for d in before)[len(before) // 2]
    decisions = Engine(embedder, judge).classify(
        texts, index, ClassifyParams(strategy="cascade", cutoff=cutoff), calibrator=prior)
    sure = [t for t, d in zip(texts, before, strict=True) if d.confidence >= cutoff]
    assert sure and len(sure) < len(ITEMS)  # both kinds in the batch
    assert not set(sure) & set(judge.asked)
    assert set(judge.asked) == set(t for t, _ in ITEMS) - set(sure)  # one question per unsure
    for (text, label), d in zip(ITEMS, decisions, strict=True):
        assert d.label == d.trace[0].label  # retrieval's label: never less accurate
        assert d.judge_calls == (0 if text in sure else 1)
        if text not in sure and d.label != label:  # the oracle said no: stays for review
            assert d.status == "needs_review"


def test_a_judge_at_chance_gets_no_weight_and_is_not_asked(world):
    embedder, index, _ = world
    judge = CoinJudge()
    prior = fit_prior(index, 5, judge, target_precision=0.99)
    assert judge.asked  # it was measured on the schema's examples
    assert prior.judge_weight == 0.0 and prior.meta["judge_informative"] is False
    judge.asked.clear()
    decisions = Engine(embedder, judge).classify(
        [t for t, _ in ITEMS], index, ClassifyParams(strategy="cascade", target_precision=0.99),
        calibrator=prior)
    assert judge.asked == [] and all(d.judge_calls == 0 for d in decisions)
    alone = Engine(embedder, None).classify(
        [t for t, _ in ITEMS], index, ClassifyParams(strategy="retrieval", target_precision=0.99),
        calibrator=prior)
    assert [(d.label, d.confidence, d.status) for d in decisions] == \
        [(d.label, d.confidence, d.status) for d in alone]
