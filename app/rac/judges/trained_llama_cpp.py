"""A trained judge served by llama.cpp: the GGUF file `rac judge train` writes, asked with the
trained judge's own prompt (everything else, the prefix cache included, is the embedded judge)."""

from __future__ import annotations

from pathlib import Path

from app.rac.judges.llama_cpp import LlamaCppJudge
from app.rac.prompts import Question
from app.rac.trained_prompt import TRAINED_PROMPT_VERSION, trained_messages_for


class TrainedLlamaCppJudge(LlamaCppJudge):
    prompt_version = TRAINED_PROMPT_VERSION

    def __init__(self, model_path: Path, *, model_id: str | None = None, n_ctx: int = 1024,
                 n_threads: int | None = None) -> None:
        super().__init__(model_path, n_ctx=n_ctx, n_threads=n_threads)
        if model_id:
            self.model_id = model_id

    def render(self, question: Question) -> str:
        return self._formatter(messages=trained_messages_for(question)).prompt  # type: ignore[arg-type]
