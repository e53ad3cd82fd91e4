"""The embedded judge: a GGUF model run in-process by llama.cpp.

P(yes) is read from the logits of the first answer token. Consecutive questions reuse the KV
cache of the prompt prefix they share (`eval_reusing_prefix`), and the prefix before the item
(with the label-first prompt: system rule + label block) is saved per label and loaded for the
label's later questions (`PrefixStates`, LRU-bounded by bytes), so a question costs only the
tokens of its item.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from app.rac.bundled import judge_gguf_path
from app.rac.judge import Judge, JudgeError, answer_token_ids
from app.rac.judges.prefix_states import PrefixStates, load_prefix, save_prefix
from app.rac.prompts import LabelInfo, Question, checked_prompt_version, messages_for

ITEM_MARK = "\x00item\x00"
"""Stands for the item while rendering a question's prefix (the prompt up to its item)."""
DEFAULT_PREFIX_CACHE_BYTES = 512 * 1024 * 1024


def eval_reusing_prefix(llm: Any, cached: list[int], tokens: list[int]) -> list[int]:
    """Evaluate `tokens`, keeping the KV cache of the prefix they share with `cached` (the
    tokens evaluated last), and return what the cache now holds. Consecutive prompts that
    share a long prefix (one item's candidate labels; the all-in-prompt label list) then cost
    only their own tokens."""
    # Evaluate at least one token, to get logits.
    shared = min(_shared_length(cached, tokens), len(tokens) - 1)
    llm.n_tokens = shared
    llm.eval(tokens[shared:])
    return list(tokens)


class LlamaCppJudge(Judge):
    def __init__(self, model_path: Path | None = None, *, n_ctx: int = 2048,
                 n_threads: int | None = None, prompt_version: str | None = None,
                 prefix_cache_bytes: int = DEFAULT_PREFIX_CACHE_BYTES) -> None:
        super().__init__()
        if prompt_version is not None:  # else the class's own (a trained judge has its own)
            self.prompt_version = checked_prompt_version(prompt_version)
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
        self.prefix_states = PrefixStates(prefix_cache_bytes)
        self.prefix_loads = 0
        """Questions that started from a saved prefix state loaded into the KV cache."""
        self._prefixes: dict[LabelInfo, str] = {}
        self._reverse_next = False

    def _answer_token_ids(self) -> tuple[np.ndarray, np.ndarray]:
        yes, no = answer_token_ids(
            lambda token_id: self._llm.detokenize([token_id]).decode("utf-8", "ignore"),
            self._llm.n_vocab())
        return np.array(yes), np.array(no)

    def render(self, question: Question) -> str:
        messages = messages_for(question, self.prompt_version)
        # The prompts are plain OpenAI-style dicts; llama_cpp types them as TypedDicts.
        return self._formatter(messages=messages).prompt  # type: ignore[arg-type]

    def prefix(self, label: LabelInfo) -> str:
        """The prompt up to the item: the same for every question about `label`."""
        found = self._prefixes.get(label)
        if found is None:
            found = self.render(Question(ITEM_MARK, label)).split(ITEM_MARK)[0]
            if len(self._prefixes) > 100_000:  # schemas come and go in a long-lived server
                self._prefixes.clear()
            self._prefixes[label] = found
        return found

    def tokens(self, prompt: str) -> list[int]:
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def _p_yes(self, questions: list[Question]) -> list[float]:
        # Order by prefix, then item, so consecutive prompts share the longest prefix (with the
        # label-first prompt: one label's questions together); answer in input order.
        prefixes = [self.prefix(q.label) for q in questions]
        answers = [0.0] * len(questions)
        with self._lock:
            if self._closed:  # llama.cpp would read freed memory and crash the process
                raise JudgeError("this judge was closed; make a new one")
            # Every other batch in reverse: a job's chunks ask about the same labels, and in
            # one fixed order a saved-states budget smaller than their states drops each state
            # just before its label comes round again (LRU under a cyclic scan: no hits at all);
            # reversed, the states kept from the end of one batch serve the start of the next.
            # Answers do not depend on the order (`_start_from_prefix`).
            order = sorted(range(len(questions)), key=lambda i: (prefixes[i], questions[i].text),
                           reverse=self._reverse_next)
            self._reverse_next = not self._reverse_next
            for i in order:
                answers[i] = self._one(self.tokens(self.render(questions[i])), prefixes[i])
        return answers

    def _one(self, tokens: list[int], prefix: str | None = None) -> float:
        if len(tokens) >= self.n_ctx:
            tokens = tokens[-(self.n_ctx - 1):]  # the tail holds the item and the question
        elif prefix:
            self._start_from_prefix(prefix, tokens)
        self._cached = eval_reusing_prefix(self._llm, self._cached, tokens)
        logits = np.ctypeslib.as_array(self._llm._ctx.get_logits(), shape=(self._llm.n_vocab(),))
        return _p_yes_from_logits(logits, self._yes_ids, self._no_ids)

    def _start_from_prefix(self, prefix: str, tokens: list[int]) -> None:
        """Make the KV cache hold exactly the prompt's prefix (already there, loaded from its
        saved state, or evaluated now and saved for the label's next question), so the rest of
        the prompt is evaluated after it in one batch.

        Always the same split: llama.cpp's logits depend slightly on how a prompt is cut into
        batches (re-evaluating only the last token moved a P(yes) by 0.005), so an answer must
        not depend on which question came before it."""
        if self.prefix_states.max_bytes <= 0:
            return
        state = self.prefix_states.get(prefix)
        if state is None:
            # The prefix's own tokens can end differently from the prompt's where the item
            # joins them (BPE merges across the boundary): keep the part both agree on.
            shared = _shared_length(self.tokens(prefix), tokens)
            if shared < 2:
                return
            self._cached = eval_reusing_prefix(self._llm, [], tokens[:shared])  # from scratch
            self.prefix_states.put(prefix, save_prefix(self._llm, tokens[:shared]))
            return
        if _shared_length(self._cached, state.tokens) < len(state.tokens):  # not in the cache
            load_prefix(self._llm, state)
            self.prefix_loads += 1
        self._cached = list(state.tokens)  # reuse the prefix, never more

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


def _shared_length(a: list[int] | tuple[int, ...], b: list[int] | tuple[int, ...]) -> int:
    shared = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        shared += 1
    return shared
