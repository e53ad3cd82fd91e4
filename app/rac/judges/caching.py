"""A judge that answers from a JSON file of earlier answers and asks the wrapped judge only what
is new: for sweeps (top_k, thresholds) over the same items with `rac eval --judge-cache`."""

from __future__ import annotations

import json
from pathlib import Path

from app.rac.judge import Judge
from app.rac.prompts import Question


class CachingJudge(Judge):
    """The judge is deterministic, so a question asked before has the same answer. Keys carry the
    model id and prompt version, so a changed prompt never reuses old answers. Runs with cache
    hits have no meaningful timings; `hits` says how many questions came from the cache.
    """

    def __init__(self, inner: Judge, path: Path) -> None:
        super().__init__()
        self.inner = inner
        self.path = path
        self.model_id = inner.model_id
        self.prompt_version = inner.prompt_version
        self.hits = 0
        self._answers: dict[str, float] = (json.loads(path.read_text()) if path.exists()
                                           else {})

    def _key(self, q: Question) -> str:
        return json.dumps([self.model_id, self.prompt_version, q.text, q.label.name,
                           q.label.description, list(q.label.examples)])

    def _p_yes(self, questions: list[Question]) -> list[float]:
        keys = [self._key(q) for q in questions]
        missing = [i for i, k in enumerate(keys) if k not in self._answers]
        self.hits += len(questions) - len(missing)
        for i, p in zip(missing, self.inner.p_yes([questions[i] for i in missing]),
                        strict=True):
            self._answers[keys[i]] = p
        if missing:
            self.save()  # a long run that is stopped keeps what it paid for
        return [self._answers[k] for k in keys]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._answers))
        tmp.replace(self.path)

    def close(self) -> None:
        self.save()  # the inner judge is shared by the process: it stays open


def unwrapped(judge: Judge) -> Judge:
    """The judge that really answers (for its timings)."""
    return judge.inner if isinstance(judge, CachingJudge) else judge
