"""Judge training: pairs, the GGUF round trip, and a tiny real training (slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.rac.gguf_export import hf_name, llama_permute
from app.rac.prompts import LabelInfo
from app.rac.training import (
    LabelledText,
    TrainConfig,
    make_pairs,
    schema_examples,
    select_examples,
)

LABELS = [
    LabelInfo("card_arrival", "The new card has not arrived yet.",
              ("Where is my new card?", "My card still has not come in the post.")),
    LabelInfo("exchange_rate", "Questions about the exchange rate used.",
              ("What exchange rate do you use?", "Is the currency rate fair?")),
    LabelInfo("lost_or_stolen_card", "The card was lost or stolen.",
              ("I lost my card yesterday.", "Someone stole my card.")),
]


def test_select_examples_is_capped_per_label_and_nested():
    rows = [LabelledText(f"text {i}", f"label_{i % 3}") for i in range(30)]
    five = select_examples(rows, 5, seed=0)
    two = select_examples(rows, 2, seed=0)
    assert sorted({r.label for r in five}) == ["label_0", "label_1", "label_2"]
    assert all(sum(r.label == x for r in five) == 5 for x in ("label_0", "label_1", "label_2"))
    assert set(two) <= set(five)  # review goes on in rounds: earlier picks stay picked
    assert select_examples(rows, None, seed=0) == rows


def test_pairs_mix_positives_hard_and_easy_negatives():
    examples = schema_examples(LABELS) + [LabelledText("dropped label", "gone")]
    ranked = [["exchange_rate", "card_arrival", "lost_or_stolen_card"]] * len(examples)
    config = TrainConfig(hard_negatives=1, easy_negatives=1)
    pairs = make_pairs(examples, LABELS, ranked, config)
    assert len(pairs) == 6 * 3  # the example of an unknown label is skipped
    for text in {p.question.text for p in pairs}:
        mine = [p for p in pairs if p.question.text == text]
        assert [p.kind for p in mine] == ["positive", "hard", "easy"]
        gold = mine[0].question.label.name
        assert mine[0].answer and not mine[1].answer and not mine[2].answer
        assert mine[1].question.label.name == next(x for x in ranked[0] if x != gold)
        assert len({p.question.label.name for p in mine}) == 3


def test_gguf_names_and_the_llama_permutation():
    assert hf_name("blk.3.attn_q.weight") == "model.layers.3.self_attn.q_proj.weight"
    assert hf_name("blk.0.ffn_norm.weight") == "model.layers.0.post_attention_layernorm.weight"
    assert hf_name("output_norm.weight") == "model.norm.weight"
    assert hf_name("rope_freqs.weight") is None
    # Hugging Face's GGUF loader undoes llama.cpp's permutation: the two must be inverses.
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    unpermute = LlamaTensorProcessor(config={})._reverse_permute_weights
    weights = np.arange(6 * 8 * 5, dtype=np.float32).reshape(6 * 8, 5)
    assert np.array_equal(unpermute(llama_permute(weights, 6), 6, 6), weights)
    assert not np.array_equal(llama_permute(weights, 6), weights)


@pytest.mark.slow
def test_tiny_training_changes_the_answers_and_survives_the_gguf(tmp_path: Path):
    from app.rac.bundled import judge_gguf_path
    from app.rac.judges.trained import load_trained_judge
    from app.rac.training import JudgeTrainer, pair_auc

    config = TrainConfig(epochs=10, batch_size=6, learning_rate=3e-4, train_layers=2,
                         hard_negatives=1, easy_negatives=1, threads=1)
    examples = schema_examples(LABELS)
    ranked = [[x.name for x in LABELS]] * len(examples)
    pairs = make_pairs(examples, LABELS, ranked, config)
    questions = [p.question for p in pairs]
    trainer = JudgeTrainer(judge_gguf_path(), threads=1)
    before = trainer.p_yes(questions)
    report = trainer.train(pairs, config, progress=False)
    after = trainer.p_yes(questions)

    def gap(answers: list[float]) -> float:
        yes = [a for a, p in zip(answers, pairs, strict=True) if p.answer]
        no = [a for a, p in zip(answers, pairs, strict=True) if not p.answer]
        return float(np.mean(yes) - np.mean(no))

    assert report.steps == 10 * 3 and report.pairs == {"positive": 6, "hard": 6, "easy": 6}
    assert gap(after) > gap(before) + 0.1, (gap(before), gap(after))
    assert pair_auc(pairs, after) > pair_auc(pairs, before)
    assert report.train_auc_after == pytest.approx(pair_auc(pairs, after))

    path = trainer.save(tmp_path / "judge.gguf")
    served = load_trained_judge(path, model_id="trained:test", threads=1)
    try:
        answers = served.p_yes(questions)
    finally:
        served.close()
    assert served.model_id == "trained:test" and served.prompt_version == "yn-t1"
    # llama.cpp multiplies with 4-bit weights where torch used dequantized floats: close, and
    # telling the trained yes from the no just as well.
    assert max(abs(a - b) for a, b in zip(answers, after, strict=True)) < 0.1
    assert gap(answers) > gap(before) + 0.1
