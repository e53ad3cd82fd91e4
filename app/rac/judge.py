"""The judge answers many (item, label) yes/no questions at once with P(yes).

Backends implement `_p_yes`; validation and batching bookkeeping live here, so every backend
behaves the same to its callers.
"""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from app.rac.prompts import PROMPT_VERSION, Question

YES_WORDS = frozenset({"yes"})
NO_WORDS = frozenset({"no"})


class JudgeError(RuntimeError):
    """The judge could not answer (server down for good, a protocol problem)."""


def answer_word(token: str) -> str | None:
    """'yes'/'no' for a token that spells one of them (' Yes', 'YES', 'yes.'), else None."""
    word = token.strip().strip(".,!:;\"'").lower()
    if word in YES_WORDS:
        return "yes"
    if word in NO_WORDS:
        return "no"
    return None


def answer_token_ids(decode: Callable[[int], str], vocab_size: int) -> tuple[list[int], list[int]]:
    """Every vocabulary entry that spells yes / no (' Yes', 'yes', 'YES'...).

    Local backends (llama.cpp, transformers) sum the probability of all of them, so each reads
    the same P(yes) from the same model.
    """
    yes, no = [], []
    for token_id in range(vocab_size):
        word = answer_word(decode(token_id))
        if word == "yes":
            yes.append(token_id)
        elif word == "no":
            no.append(token_id)
    if not yes or not no:
        raise ValueError("the model's vocabulary has no yes/no tokens")
    return yes, no


def p_yes_from_logprobs(pairs: Iterable[tuple[str, float]]) -> float | None:
    """P(yes) = P(yes tokens) / (P(yes tokens) + P(no tokens)) over (token, logprob) pairs.

    Token variants (' yes', 'Yes', ...) are summed. None when neither word is among the tokens.
    """
    mass = {"yes": 0.0, "no": 0.0}
    for token, logprob in pairs:
        word = answer_word(token)
        if word is not None and logprob is not None and math.isfinite(logprob):
            mass[word] += math.exp(logprob)
    total = mass["yes"] + mass["no"]
    if total <= 0.0:
        return None
    return mass["yes"] / total


@dataclass
class JudgeStats:
    calls: int = 0
    seconds: float = 0.0


class Judge(ABC):
    """`p_yes(questions)` for many questions at once; a backend may batch or keep them in flight."""

    model_id: str = "judge"
    prompt_version: str = PROMPT_VERSION

    def __init__(self) -> None:
        self.stats = JudgeStats()
        self._stats_lock = threading.Lock()
        self.observers: list[Callable[[int, float], None]] = []
        """Called with (questions, seconds) after each batch, e.g. to export metrics."""

    def p_yes(self, questions: Sequence[Question]) -> list[float]:
        if not questions:
            return []
        started = time.perf_counter()
        answers = self._p_yes(list(questions))
        if len(answers) != len(questions):
            raise JudgeError(f"{type(self).__name__} returned {len(answers)} answers "
                             f"for {len(questions)} questions")
        seconds = time.perf_counter() - started
        with self._stats_lock:
            self.stats.calls += len(questions)
            self.stats.seconds += seconds
        for observe in self.observers:
            observe(len(questions), seconds)
        return [min(1.0, max(0.0, float(a))) for a in answers]

    @abstractmethod
    def _p_yes(self, questions: list[Question]) -> list[float]:
        """One P(yes) per question, in order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or model memory."""
