"""The prior asks the judge about schema examples; the prompt shows a label's examples. A judge
must not see the example it is asked about among them, or it reads the answer off the prompt and
looks informative when it is not (real bundled embedder, a real Judge subclass)."""

from __future__ import annotations

from pathlib import Path

from app.cli.files import load_schema
from app.rac.embedder import SentenceTransformerEmbedder
from app.rac.index import LabelIndex
from app.rac.judge import Judge
from app.rac.prior import fit_prior, without_example
from app.rac.prompts import LabelInfo, Question

SCHEMA = Path(__file__).parents[2] / "schemas" / "banking77.yaml"


class PeekingJudge(Judge):
    """Says yes exactly when the text is one of the label's examples shown in the question:
    all it knows is what the prompt gives away."""

    model_id = "peeking"

    def __init__(self) -> None:
        super().__init__()
        self.questions: list[Question] = []

    def _p_yes(self, questions: list[Question]) -> list[float]:
        self.questions.extend(questions)
        return [0.95 if q.text.strip() in {e.strip() for e in q.label.examples} else 0.05
                for q in questions]


def test_without_example_drops_only_that_example():
    label = LabelInfo("card_arrival", "Card not here.", ("Where is my card?", "card late"))
    assert without_example(label, " Where is my card? ").examples == ("card late",)
    assert without_example(label, "something else") is label


def test_a_judge_cannot_read_the_answer_from_the_prompt():
    _, _, labels, _ = load_schema(SCHEMA)
    index = LabelIndex.build(labels[:25], SentenceTransformerEmbedder(None))
    judge = PeekingJudge()
    prior = fit_prior(index, 5, judge)
    assert judge.questions, "the prior should ask the judge about unsure examples"
    assert all(q.text.strip() not in {e.strip() for e in q.label.examples}
               for q in judge.questions)
    assert prior.judge_weight == 0.0  # it answered no to everything: no information
