"""Saved prefix states of the label-first prompt: the same P(yes) as a cold evaluation on the
real bundled judge, and the LRU stays within its byte budget."""

from __future__ import annotations

import pytest

from app.rac.judges.llama_cpp import LlamaCppJudge
from app.rac.judges.prefix_states import PrefixState, PrefixStates
from app.rac.prompts import LabelInfo, Question

REFUND = LabelInfo("refund_request", "The customer asks to get their money back for a purchase.",
                   ("I want a refund", "Can I get my money back?"))
CARD = LabelInfo("card_arrival", "The customer's new card has not arrived yet.",
                 ("Where is my new card?",))
PIN = LabelInfo("change_pin", "The customer wants to change the PIN of their card.")
TEXTS = ("My card still has not come in the post", "I want my money back for this order",
         "how do I set a new pin")


def _state(n: int) -> PrefixState:
    return PrefixState((1, 2, 3), b"x" * n)


def test_lru_keeps_the_recently_used_states_within_the_byte_budget():
    states = PrefixStates(max_bytes=250)
    states.put("a", _state(100))
    states.put("b", _state(100))
    assert states.get("a") is not None  # a is now more recent than b
    states.put("c", _state(100))
    assert "b" not in states and "a" in states and "c" in states
    assert len(states) == 2 and states.bytes == 200 and states.evictions == 1
    states.put("huge", _state(1000))  # larger than the whole budget: not kept, nothing evicted
    assert "huge" not in states and len(states) == 2
    states.put("a", _state(50))  # replacing a state counts its new size only
    assert states.bytes == 150
    assert states.get("b") is None and states.misses == 1


@pytest.mark.slow
def test_saved_prefix_states_answer_as_a_cold_evaluation():
    questions = [Question(t, label) for label in (REFUND, CARD, PIN) for t in TEXTS]
    cold_judge = LlamaCppJudge(n_ctx=1024, prefix_cache_bytes=0)
    warm_judge = LlamaCppJudge(n_ctx=1024)
    try:
        cold = [cold_judge.p_yes([q])[0] for q in questions]  # each evaluated on its own
        assert len(cold_judge.prefix_states) == 0
        # One question per call, labels interleaved, so every later question about a label must
        # load its saved state (another label's prefix is in the KV cache by then).
        interleaved = sorted(range(len(questions)), key=lambda i: (i % len(TEXTS), i))
        warm = [0.0] * len(questions)
        for i in interleaved:
            warm[i] = warm_judge.p_yes([questions[i]])[0]
        assert len(warm_judge.prefix_states) == 3
        assert warm_judge.prefix_states.hits == len(questions) - 3
        assert warm_judge.prefix_loads >= len(questions) - 3 - 1
        assert warm == pytest.approx(cold, abs=2e-3)
        assert warm_judge.p_yes(questions) == pytest.approx(cold, abs=2e-3)  # one batch
    finally:
        cold_judge.close()
        warm_judge.close()


@pytest.mark.slow
def test_the_judge_keeps_its_saved_states_within_the_budget():
    probe = LlamaCppJudge(n_ctx=1024)
    try:
        probe.p_yes([Question(TEXTS[1], label) for label in (REFUND, CARD, PIN)])
        all_three = probe.prefix_states.bytes
        assert len(probe.prefix_states) == 3
    finally:
        probe.close()
    budget = all_three - 1  # one byte short of keeping every label's prefix
    judge = LlamaCppJudge(n_ctx=1024, prefix_cache_bytes=budget)
    try:
        for label in (REFUND, CARD, PIN, REFUND):
            judge.p_yes([Question(TEXTS[1], label)])
            assert judge.prefix_states.bytes <= budget
        assert len(judge.prefix_states) <= 2
        assert judge.prefix_states.evictions >= 2  # PIN's state evicted REFUND's, and back
        assert judge.prefix(REFUND) in judge.prefix_states  # the most recent one stays
    finally:
        judge.close()


@pytest.mark.slow
def test_batches_over_more_labels_than_the_budget_still_reuse_states():
    # A job's chunks ask about the same labels batch after batch. In one fixed order, with room
    # for two of three labels' states, LRU drops each state just before it is needed again and
    # the second batch would find none; every other batch runs in reverse, so the two states
    # kept from the end of the first batch open the second.
    batch = [Question(TEXTS[1], label) for label in (REFUND, CARD, PIN)]
    probe = LlamaCppJudge(n_ctx=1024)
    try:
        sizes = []
        for question in batch:  # each label's state size, as the budget grows by it
            before = probe.prefix_states.bytes
            probe.p_yes([question])
            sizes.append(probe.prefix_states.bytes - before)
        sizes.sort()
    finally:
        probe.close()
    judge = LlamaCppJudge(n_ctx=1024, prefix_cache_bytes=sizes[-1] + sizes[-2])
    try:
        first = judge.p_yes(batch)
        assert judge.prefix_states.hits == 0 and len(judge.prefix_states) == 2
        second = judge.p_yes(batch)
        assert judge.prefix_states.hits == 2
        assert second == pytest.approx(first, abs=2e-3)  # the order never changes an answer
    finally:
        judge.close()
