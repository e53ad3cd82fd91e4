"""The yes/no question put to the judge, versioned: the version is stored with every decision, so a
changed prompt never silently mixes with old results.

The item comes before the label so that every question about one item shares a prompt prefix:
llama.cpp reuses its KV cache and vLLM its prefix cache across an item's candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROMPT_VERSION = "yn-1"

SYSTEM = (
    "You label customer texts. You are shown a text and one candidate label with its "
    "description. Answer 'yes' if the label fits the text, otherwise 'no'. Answer with one word."
)


@dataclass(frozen=True)
class LabelInfo:
    name: str
    description: str
    examples: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Question:
    """Does `label` apply to `text`?"""

    text: str
    label: LabelInfo


def readable(name: str) -> str:
    return name.replace("_", " ").strip()


def messages_for(question: Question, *, max_examples: int = 2) -> list[dict[str, str]]:
    label = question.label
    lines = [
        f"Text: {question.text.strip()}",
        "",
        f"Label: {readable(label.name)}",
        f"Description: {label.description.strip()}",
    ]
    examples = [e for e in label.examples[:max_examples] if e.strip()]
    if examples:
        lines.append("Examples of texts with this label: " + " | ".join(examples))
    lines += ["", "Does this label fit the text? Answer yes or no."]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]
