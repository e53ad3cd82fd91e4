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

TRAINED_ACCEPT_THRESHOLD = 0.5
"""Where a trained judge's yes turns into no: it is trained with the positives weighted to
balance the negatives, so P(yes) = 0.5 is its decision boundary. (The service's configured
default was tuned for the bundled judge, whose P(yes) never reaches 0.5.)"""

TRAINED_SYSTEM = "Does the label fit the customer text? Answer yes or no."


def trained_messages_for(question: Question) -> list[dict[str, str]]:
    content = f"Text: {question.text.strip()}\nLabel: {readable(question.label.name)}\nFits?"
    return [{"role": "system", "content": TRAINED_SYSTEM}, {"role": "user", "content": content}]
