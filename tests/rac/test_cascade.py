"""The schema prior and the cascade with the real bundled embedder on part of the Banking77 schema;
judges are real subclasses of `Judge` (an oracle and a coin-flipper) so the test controls what
they know."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from app.cli.files import load_schema
from app.config import EmbedderSettings
from app.rac.calibration import Calibrator
from app.rac.decision import ClassifyParams
from app.rac.engine import Engine
from app.rac.index import LabelIndex
from app.rac.judge import Judge
from app.rac.prior import fit_prior, schema_decisions
from app.rac.prompts import Question
from app.runtime import make_embedder

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

OUT_OF_SCOPE = [  # Banking77 train messages of the labels dropped below (first 20, fixed shuffle)
    'Can I have money in more than one currency in my account?',
    'What is the appropriate age for my child to be able to open an account?',
    'How to order a virtual card',
    'Is it possible to hold money in different currencies?',
    'What do I do if my card is stolen?',
    'where can i have a virtual card',
    'I mistook my pin and now I am locked.  Can you unlock me?',
    'Someone stole my wallet with my card in it while vacationing in Spain. I really need my '
    'card blocked and a new one ordered.',
    'How can I open an account for my children?',
    'What is the age requirement?',
    'How old does one need to be?',
    'What do I have to do to get my PIN unblocked?',
    'Is there a number to call to get my pin unblocked?',
    'I need to hold money, what currencies can I use?',
    'What are the age limits for your service?',
    'Can I make an account for my daughter?',
    'Which fiat currencies are supported for holding and exchanging?',
    'I want to open an account for my children',
    'While I was drunk, I goofed my PIN number and your machine ate my card. How can I get it '
    'back?',
    'Please tell me the types of currency I can hold.',
]
IN_SCOPE = [  # Banking77 train messages of the kept labels (first 20 of the same shuffle)
    ("The ATM didn't give me what I asked for but my balance says it did",
     'wrong_amount_of_cash_received'),
    ('What is the greatest number of times that I can top-up?', 'top_up_limits'),
    ("I don't think the transaction has gone through, so can I cancel a transfer?",
     'cancel_transfer'),
    ('After purchasing an item I noticed the exchange rate was incorrect.',
     'card_payment_wrong_exchange_rate'),
    ("I didn't get all the cash I asked for", 'wrong_amount_of_cash_received'),
    ('Can you tell me how to get my card on the app?', 'card_linking'),
    ('I need urgent help. I realize I sent my payment to the wrong account number. I made a '
     'typo. Please cancel the transfer immediately. I cannot do anything from the app.',
     'cancel_transfer'),
    ("What's the process for exchanges?", 'exchange_rate'),
    ('what are your exchange rates at?', 'exchange_rate'),
    ('I got charged for with a fee for paying with my card.', 'card_payment_fee_charged'),
    ('The exchange rate is incorrect for something I bought', 'card_payment_wrong_exchange_rate'),
    ("Why was there an additional fee on the payment I just made? I don't usually have "
     'additional fees applied to my payments.',
     'card_payment_fee_charged'),
    ("The exchange rate you are using is really bad.This can't be the official interbank "
     'exchange rate.',
     'card_payment_wrong_exchange_rate'),
    ('I would like to track the card you sent to me.', 'card_arrival'),
    ('Why is my cash withdrawal still pending?', 'pending_cash_withdrawal'),
    ('At what places accept my card?', 'card_acceptance'),
    ('top up not completed', 'pending_top_up'),
    ('How long should I wait for the card to arrive?', 'card_delivery_estimate'),
    ('how long does delivery take?', 'card_delivery_estimate'),
    ("Why didn't the ATM give me all my money", 'wrong_amount_of_cash_received'),
]
DROPPED = {"age_limit", "pin_blocked", "lost_or_stolen_card", "getting_virtual_card",
           "fiat_currency_support"}


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
    embedder = make_embedder(EmbedderSettings())  # the process's copy: loaded once per run
    index = LabelIndex.build(labels, embedder)
    gold = {ex.strip(): label.name for label in labels for ex in label.examples}
    gold.update(dict(ITEMS))
    return embedder, index, gold


def test_calibrated_from_the_schema_alone(world):
    _, index, _ = world
    texts, traces, right, out_of_scope = schema_decisions(index, 5)
    # each example left out of its own label, then its whole label left out of the index
    assert len(texts) == 100 and sum(out_of_scope) == 50
    assert 0 < sum(right[:50]) < 50 and not any(right[50:])
    for text, trace in zip(texts, traces, strict=True):
        assert all(step.retrieval_score < 0.999 for step in trace), text  # not found itself
    for text, trace in zip(texts[50:], traces[50:], strict=True):
        assert index.labels[index.label_ids[trace[0].label]].examples  # a real label
        assert text.strip() not in {e.strip() for e in
                                    index.labels[index.label_ids[trace[0].label]].examples}
        assert len(trace) == 5
    prior = fit_prior(index, 5)
    assert not prior.is_identity and prior.source == "schema" and prior.version == 0
    assert prior.judge_weight == 0.0  # no judge asked: it gets no weight
    assert prior.ece_after is not None and prior.ece_after < 0.15  # held-out on its examples
    score, margin = 2, 3  # a clearer lead over the next label means more likely right, and
    assert prior.weights[margin] > 0  # a closer label: out-of-scope probes are far from theirs
    assert prior.weights[score] > 0
    # the cutoffs read the held-out confidences as items would come: out-of-scope ones a tenth
    assert len(prior.reference) == 2000 and prior.meta["out_of_scope_weight"] == 0.1


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


def test_an_item_of_a_label_not_in_the_schema_is_not_accepted(world):
    """Five of the first 25 labels dropped: their items belong to no label of the schema. The
    prior learnt from the out-of-scope probes (examples searched without their label) that a
    far nearest label means "probably none of these": none of them is accepted at precision
    0.95, while the in-scope items still are (and rightly)."""
    embedder, _, _ = world
    _, _, labels, _ = load_schema(SCHEMA)
    index = LabelIndex.build([x for x in labels[:25] if x.name not in DROPPED], embedder)
    prior = fit_prior(index, 5)
    engine = Engine(embedder, None)
    params = ClassifyParams(strategy="cascade", target_precision=0.95)
    outside = engine.classify(OUT_OF_SCOPE, index, params, calibrator=prior)
    inside = engine.classify([t for t, _ in IN_SCOPE], index, params, calibrator=prior)
    assert [d.status for d in outside] == ["needs_review"] * len(OUT_OF_SCOPE)
    accepted = [(d.label, gold) for d, (_, gold) in zip(inside, IN_SCOPE, strict=True)
                if d.status == "accepted"]
    assert len(accepted) >= 8 and all(label == gold for label, gold in accepted)
    # the probes taught it: an out-of-scope probe is on average far less sure than an in-scope one
    _, traces, _, out_of_scope = schema_decisions(index, 5)
    conf = [prior.confidence_for(t, t[0].label) for t in traces]
    probe_in = [c for c, o in zip(conf, out_of_scope, strict=True) if not o]
    probe_out = [c for c, o in zip(conf, out_of_scope, strict=True) if o]
    assert sum(probe_out) / len(probe_out) < sum(probe_in) / len(probe_in) - 0.2
