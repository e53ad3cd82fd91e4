"""The all-in-prompt baseline with the real bundled SmolLM2 GGUF on a tiny schema."""

from __future__ import annotations

import pytest

from app.rac.all_in_prompt import AllInPromptClassifier
from app.rac.prompts import LabelInfo

pytestmark = pytest.mark.slow

LABELS = [
    LabelInfo("weather", "The message is about the weather, rain, sun or the forecast."),
    LabelInfo("cooking", "The message is about cooking food, recipes or baking."),
    LabelInfo("football", "The message is about football matches, goals and players."),
]


@pytest.fixture(scope="module")
def classifier():
    c = AllInPromptClassifier(LABELS, n_ctx=1024)
    yield c
    c.close()


def test_every_label_fits_and_the_list_comes_before_the_item(classifier):
    assert classifier.fit.labels_in_prompt == 3 and not classifier.fit.truncated
    prompt = classifier.render("ITEM TEXT")
    assert max(prompt.index(x.name) for x in LABELS) < prompt.index("ITEM TEXT")


def test_answers_are_schema_labels_with_a_probability(classifier):
    texts = ["Will it rain tomorrow afternoon?", "How long should I bake a loaf of bread?"]
    decisions = classifier.classify(texts)
    for d in decisions:
        assert d.label in {x.name for x in LABELS}
        assert 0.0 < d.confidence <= 1.0
        assert d.judge_calls == 1 and d.model_id.startswith("llama.cpp:")
        assert d.status in ("accepted", "needs_review")


def test_cached_list_gives_the_same_answer_as_a_cold_prompt(classifier):
    text = "Who scored the winning goal in the match?"
    warm = classifier.classify(["Is it sunny outside?", text])[1]  # reuses the cached list
    classifier._cached = []  # forget the cache: the whole prompt is evaluated again
    classifier._llm.n_tokens = 0
    cold = classifier.classify([text])[0]
    assert (cold.label, cold.confidence) == (warm.label, pytest.approx(warm.confidence, 1e-4))


def test_nearest_label_name_is_matched(classifier):
    assert classifier.match("Cooking") == "cooking"
    assert classifier.match(" football.") == "football"
    assert classifier.match("wether") == "weather"
    assert classifier.match("") is None


def test_a_long_label_list_is_truncated_and_says_so():
    many = [LabelInfo(f"topic_{i}", "A label with a long description. " * 6) for i in range(40)]
    c = AllInPromptClassifier(many, n_ctx=512)
    try:
        assert c.fit.truncated and 0 < c.fit.labels_in_prompt < 40
        assert c.fit.prompt_tokens <= 512 - 256
        decision = c.classify(["anything at all"])[0]
        assert decision.label is None or decision.label in {x.name for x in c.labels}
    finally:
        c.close()
