"""The embedded judge with the real bundled SmolLM2 GGUF."""

from __future__ import annotations

import pytest

from app.rac.judges.llama_cpp import LlamaCppJudge
from app.rac.prompts import LabelInfo, Question

pytestmark = pytest.mark.slow

REFUND = LabelInfo("refund_request", "The customer asks to get their money back.")
CARD = LabelInfo("card_arrival", "The customer's new card has not arrived yet.")


@pytest.fixture(scope="module")
def judge():
    j = LlamaCppJudge(n_ctx=1024)
    yield j
    j.close()


def test_p_yes_is_a_probability_and_deterministic(judge):
    questions = [Question("I want my money back for this order", REFUND),
                 Question("I want my money back for this order", CARD)]
    first = judge.p_yes(questions)
    assert all(0.0 < p < 1.0 for p in first)
    assert judge.p_yes(questions) == pytest.approx(first, abs=1e-6)
    assert judge.stats.calls == 4


def test_prefix_reuse_gives_the_same_answer_as_a_cold_prompt(judge):
    text = "My card still has not come in the post"
    warm = judge.p_yes([Question(text, REFUND), Question(text, CARD)])  # CARD reuses the prefix
    judge.p_yes([Question("something unrelated entirely", REFUND)])  # evict the shared prefix
    cold = judge.p_yes([Question(text, CARD)])
    assert cold[0] == pytest.approx(warm[1], abs=1e-4)


def test_answers_come_back_in_question_order(judge):
    a = Question("zzz last alphabetically", REFUND)
    b = Question("aaa first alphabetically", CARD)
    assert judge.p_yes([a, b]) == pytest.approx(
        [judge.p_yes([a])[0], judge.p_yes([b])[0]], abs=1e-4)


def test_prompt_carries_label_and_question_before_item(judge):
    prompt = judge.render(Question("ITEM TEXT", REFUND))
    assert judge.prompt_version == "yn-3"
    assert prompt.index("refund request") < prompt.index("yes or no") < prompt.index("ITEM TEXT")
    assert prompt.startswith(judge.prefix(REFUND))
    assert "ITEM TEXT" not in judge.prefix(REFUND)
    assert prompt.rstrip().endswith("assistant")


def test_the_item_first_prompt_stays_selectable():
    j = LlamaCppJudge(n_ctx=512, prompt_version="yn-1")
    try:
        prompt = j.render(Question("ITEM TEXT", REFUND))
        assert j.prompt_version == "yn-1"
        assert prompt.index("ITEM TEXT") < prompt.index("refund request")
    finally:
        j.close()
    with pytest.raises(ValueError, match="unknown prompt version"):
        LlamaCppJudge(n_ctx=256, prompt_version="yn-9")


def test_a_closed_judge_refuses_instead_of_crashing():
    from app.rac.judge import JudgeError

    j = LlamaCppJudge(n_ctx=256)
    j.close()
    j.close()  # twice is harmless
    with pytest.raises(JudgeError, match="closed"):
        j.p_yes([Question("text", REFUND)])


def test_the_item_last_prompt_shares_the_question_line_too():
    j = LlamaCppJudge(n_ctx=512, prompt_version="yn-3")
    try:
        prompt = j.render(Question("ITEM TEXT", REFUND))
        prefix = j.prefix(REFUND)
        assert prompt.startswith(prefix) and "Answer yes or no" in prefix
        # after the shared prefix: the item and the chat template's end of turn, nothing else
        rest = prompt[len(prefix):]
        assert rest.startswith("ITEM TEXT") and "yes or no" not in rest
        # states saved for it answer as a cold evaluation
        warm = j.p_yes([Question("my card is late", REFUND), Question("where is my card", REFUND)])
        j.prefix_states.clear()
        cold = j.p_yes([Question("where is my card", REFUND)])
        assert cold[0] == pytest.approx(warm[1], abs=2e-3)
    finally:
        j.close()
