"""The question put to a judge trained on a schema's labels (`rac judge train`), versioned like
the bundled judge's prompt.

It is much shorter than the zero-shot prompt: the label's name only, no description and no
examples, and a one-line system message. A trained judge learns what a label means from the
reviewed items it was trained on (and those items are in the label index anyway), and on a CPU
every token is paid for twice: in each training step and in each judge call. The Banking77
descriptions alone are ~80 tokens; without them a question is ~45 tokens, so training and judging
are 2-3x faster. The item still comes first, so the questions about one item share a prefix.
"""

from __future__ import annotations

from app.rac.prompts import Question, readable

TRAINED_PROMPT_VERSION = "yn-t1"

TRAINED_ACCEPT_THRESHOLD = 0.1
"""The accept threshold a trained judge decides at (unless the caller chose one). Its balanced
training puts its yes/no boundary at P(yes) = 0.5, but as a veto there it rejected too many right
top candidates: replaying the engine's rule on its answers for 600 Banking77 dev items, 0.1 was
the most accurate threshold (docs/results.md, "Training the judge"). At 0.1 it rarely overrules
retrieval; its P(yes) still feeds the calibrated confidence."""

TRAINED_SYSTEM = "Does the label fit the customer text? Answer yes or no."


def trained_messages_for(question: Question) -> list[dict[str, str]]:
    content = f"Text: {question.text.strip()}\nLabel: {readable(question.label.name)}\nFits?"
    return [{"role": "system", "content": TRAINED_SYSTEM}, {"role": "user", "content": content}]
