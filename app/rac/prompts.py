"""The yes/no question put to the judge, versioned: the version is stored with every decision, so a
changed prompt never silently mixes with old results.

Three orders of the same content:

- `yn-1`, item first: the questions about one item share only the system rule and the item
  (~20 tokens of Banking77 text), and the ~100-token label block is evaluated for every question.
- `yn-2`, label first: system rule + label block, then the item. Every question about one label
  shares the long prefix, so llama.cpp evaluates it once and loads its saved state afterwards
  (app/rac/judges/prefix_states.py) and vLLM's automatic prefix caching reuses it for the HTTP
  backend with nothing to configure beyond `--enable-prefix-caching`.
- `yn-3`, item last (the default): the question line moves before the item too, so only the
  item and the end of turn follow the shared prefix. With saved states 2.61x the questions/s of
  `yn-1` with the bundled judge (`yn-2`: 2.18x) and 1.46x `yn-2`'s with Qwen2.5-Coder-1.5B,
  answering as well (docs/results.md, "Cheaper judge questions").
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


def _label_lines(label: LabelInfo, max_examples: int) -> list[str]:
    lines = [f"Label: {readable(label.name)}", f"Description: {label.description.strip()}"]
    examples = [e for e in label.examples[:max_examples] if e.strip()]
    if examples:
        lines.append("Examples of texts with this label: " + " | ".join(examples))
    return lines


QUESTION_LINE = "Does this label fit the text? Answer yes or no."


def item_first_messages(question: Question, *, max_examples: int = 2) -> list[dict[str, str]]:
    """`yn-1`: the item, then the label."""
    lines = [f"Text: {question.text.strip()}", "",
             *_label_lines(question.label, max_examples), "", QUESTION_LINE]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def label_first_messages(question: Question, *, max_examples: int = 2) -> list[dict[str, str]]:
    """`yn-2`: the label, then the item (the prefix shared by one label's questions)."""
    lines = [*_label_lines(question.label, max_examples), "",
             f"Text: {question.text.strip()}", "", QUESTION_LINE]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


QUESTION_BEFORE_TEXT = "Does this label fit the text below? Answer yes or no."


def item_last_messages(question: Question, *, max_examples: int = 2) -> list[dict[str, str]]:
    """`yn-3`: the label and the question, then the item: only the item and the chat template's
    end of turn follow the prefix shared by one label's questions."""
    lines = [*_label_lines(question.label, max_examples), "", QUESTION_BEFORE_TEXT, "",
             f"Text: {question.text.strip()}"]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


PROMPTS = {"yn-1": item_first_messages, "yn-2": label_first_messages,
           "yn-3": item_last_messages}
PROMPT_VERSION = "yn-3"
"""The prompt every judge asks by default: the fastest, and its answers separate right from wrong
labels as well as the others' on the dev split (bundled judge, 450 questions: pooled AUC 0.546
against 0.501 for `yn-2` and 0.519 for `yn-1`, all near chance; Qwen2.5-Coder-1.5B, 600
questions: 0.809 against 0.806 for `yn-2`, and 0.846 against 0.867 on an earlier 180).
docs/results.md, "Cheaper judge questions"."""


def messages_for(question: Question, prompt_version: str = PROMPT_VERSION
                 ) -> list[dict[str, str]]:
    """The messages of one question in the prompt `prompt_version` (default PROMPT_VERSION)."""
    return PROMPTS[prompt_version](question)


def checked_prompt_version(prompt_version: str) -> str:
    """`prompt_version` if it is one of PROMPTS; else a ValueError naming the known ones."""
    if prompt_version not in PROMPTS:
        raise ValueError(f"unknown prompt version {prompt_version!r}; known: "
                         f"{', '.join(PROMPTS)}")
    return prompt_version
