"""Deterministic stand-ins for unit tests of control flow: real subclasses of the interfaces."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.rac.embedder import Embedder
from app.rac.judge import Judge
from app.rac.prompts import Question


class ScriptedJudge(Judge):
    """Answers P(yes) from a table keyed by (text, label name); records every question."""

    model_id = "scripted"

    def __init__(self, answers: dict[tuple[str, str], float], default: float = 0.0) -> None:
        super().__init__()
        self.answers = answers
        self.default = default
        self.history: list[list[tuple[str, str]]] = []

    def _p_yes(self, questions: list[Question]) -> list[float]:
        self.history.append([(q.text, q.label.name) for q in questions])
        return [self.answers.get((q.text, q.label.name), self.default) for q in questions]


class KeywordEmbedder(Embedder):
    """One dimension per keyword: texts sharing words are similar. Exact, fast, no model."""

    model_id = "keywords-test"

    def __init__(self, vocabulary: Sequence[str]) -> None:
        self.vocabulary = list(vocabulary)
        self.dim = len(self.vocabulary) + 1

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = text.lower().replace(":", " ").replace("_", " ").split()
            for col, word in enumerate(self.vocabulary):
                out[row, col] = words.count(word)
            out[row, -1] = 0.01  # never a zero vector
        return out / np.linalg.norm(out, axis=1, keepdims=True)
