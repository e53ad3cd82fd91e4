"""The embedded judge: a GGUF model run in-process by llama.cpp.

P(yes) is read from the logits of the first answer token. Questions about the same item share a
prompt prefix (system + item); the KV cache of that prefix is kept and only the label part is
evaluated for each further candidate.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from app.rac.bundled import judge_gguf_path
from app.rac.judge import Judge, JudgeError, answer_token_ids
from app.rac.prompts import Question, messages_for


def eval_reusing_prefix(llm: Any, cached: list[int], tokens: list[int]) -> list[int]:
    """Evaluate `tokens`, keeping the KV cache of the prefix they share with `cached` (the
    tokens evaluated last), and return what the cache now holds. Consecutive prompts that
    share a long prefix (one item's candidate labels; the all-in-prompt label list) then cost
    only their own tokens."""
    shared = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        shared += 1
    shared = min(shared, len(tokens) - 1)  # evaluate at least one token to get logits
    llm.n_tokens = shared
    llm.eval(tokens[shared:])
    return list(tokens)


class LlamaCppJudge(Judge):
    def __init__(self, model_path: Path | None = None, *, n_ctx: int = 2048,
                 n_threads: int | None = None) -> None:
        super().__init__()
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        path = Path(model_path) if model_path else judge_gguf_path()
        # Half the cores by default: llama.cpp's threads spin-wait for each other, and when the
        # embedder, the API or another process take a core they stall. On 2 busy cores one
        # thread answered 4x faster than two (bench/results/judge_speed.json).
        threads = n_threads or max(1, (os.cpu_count() or 2) // 2)
        self._llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads,
                          n_threads_batch=threads, logits_all=False, verbose=False)
        meta = self._llm.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{path.name} carries no chat template; the judge needs one")
        eos = self._llm.detokenize([self._llm.token_eos()]).decode("utf-8", "ignore")
        bos = self._llm.detokenize([self._llm.token_bos()]).decode("utf-8", "ignore")
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                                              add_generation_prompt=True)
        self._yes_ids, self._no_ids = self._answer_token_ids()
        self.model_id = f"llama.cpp:{path.stem}"
        self.n_ctx = n_ctx
        # One llama.cpp context is not safe to share between threads.
        self._lock = threading.Lock()
        self._closed = False
        self._cached: list[int] = []

    def _answer_token_ids(self) -> tuple[np.ndarray, np.ndarray]:
        yes, no = answer_token_ids(
            lambda token_id: self._llm.detokenize([token_id]).decode("utf-8", "ignore"),
            self._llm.n_vocab())
        return np.array(yes), np.array(no)

    def render(self, question: Question) -> str:
        # messages_for builds plain OpenAI-style dicts; llama_cpp types them as TypedDicts.
        return self._formatter(messages=messages_for(question)).prompt  # type: ignore[arg-type]

    def tokens(self, prompt: str) -> list[int]:
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def _p_yes(self, questions: list[Question]) -> list[float]:
        # Order by item so consecutive prompts share the longest prefix, answer in input order.
        order = sorted(range(len(questions)), key=lambda i: questions[i].text)
        answers = [0.0] * len(questions)
        with self._lock:
            if self._closed:  # llama.cpp would read freed memory and crash the process
                raise JudgeError("this judge was closed; make a new one")
            for i in order:
                answers[i] = self._one(self.tokens(self.render(questions[i])))
        return answers

    def _one(self, tokens: list[int]) -> float:
        tokens = tokens[-(self.n_ctx - 1):]  # the tail holds the label and the question
        self._cached = eval_reusing_prefix(self._llm, self._cached, tokens)
        logits = np.ctypeslib.as_array(self._llm._ctx.get_logits(), shape=(self._llm.n_vocab(),))
        return _p_yes_from_logits(logits, self._yes_ids, self._no_ids)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._llm.close()


def _p_yes_from_logits(logits: np.ndarray, yes_ids: np.ndarray, no_ids: np.ndarray) -> float:
    # Softmax restricted to the answer tokens: the normaliser over the whole vocabulary cancels.
    both = np.concatenate([logits[yes_ids], logits[no_ids]]).astype(np.float64)
    top = both.max()
    weights = np.exp(both - top)
    return float(weights[: len(yes_ids)].sum() / weights.sum())
