"""The naive baseline of the RAC paper: every label in one prompt, the LLM names one.

The prompt is the label list (name and description of each label) followed by the item, and the
model generates the label name greedily; the text it writes is matched to the nearest label name.

- The label list comes *before* the item, so every item's prompt starts with the same tokens and
  llama.cpp keeps the KV cache of the list between items: each item then costs only its own few
  tokens plus the answer, not the thousands of tokens of the list.
- Labels are added in schema order until the prompt would not leave room for an item and the answer
  in the context window; the rest are left out, and `labels_in_prompt` / `truncated` say so. A left
  out label can never be predicted.
- Confidence is the model's probability of the answer it gave: the product of the softmax
  probabilities (over the whole vocabulary) of the greedily generated tokens up to the end of the
  label name, i.e. P(this exact label name | prompt). The first token alone would be a poor
  measure here, because many names share it ("card_...", "transfer_...").
"""

from __future__ import annotations

import difflib
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.rac.bundled import judge_gguf_path
from app.rac.decision import Decision, Status
from app.rac.judges.llama_cpp import eval_reusing_prefix
from app.rac.prompts import LabelInfo

PROMPT_VERSION = "aip-1"
ITEM_TOKEN_BUDGET = 256
"""Room kept for the item's own tokens (longer items are cut from the end)."""

SYSTEM = (
    "You classify customer messages. Choose the one label from the list below that fits the "
    "message best. Reply with the label name exactly as written, and nothing else.\n\nLabels:\n"
)


@dataclass(frozen=True)
class PromptFit:
    labels_in_prompt: int
    labels_total: int
    prompt_tokens: int
    """Tokens of the shared prefix (instructions and label list)."""

    @property
    def truncated(self) -> bool:
        return self.labels_in_prompt < self.labels_total


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


class AllInPromptClassifier:
    """Classify items by asking the bundled (or a given) GGUF model to name a label."""

    def __init__(self, labels: Sequence[LabelInfo], model_path: Path | None = None, *,
                 n_ctx: int = 8192, n_threads: int | None = None, cutoff: float = 0.8) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        path = Path(model_path) if model_path else judge_gguf_path()
        threads = n_threads or os.cpu_count() or 1
        self._llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads,
                          n_threads_batch=threads, logits_all=False, verbose=False)
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{path.name} carries no chat template")
        eos = self._llm.detokenize([self._llm.token_eos()]).decode("utf-8", "ignore")
        bos = self._llm.detokenize([self._llm.token_bos()]).decode("utf-8", "ignore")
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                                              add_generation_prompt=True)
        self.model_id = f"llama.cpp:{path.stem}"
        self.prompt_version = PROMPT_VERSION
        self.n_ctx = n_ctx
        self.cutoff = cutoff
        self.all_labels = list(labels)
        self._lock = threading.Lock()
        self._cached: list[int] = []
        self.labels, self.fit = self._fit_labels()
        self._by_key = {_normalise(x.name): x.name for x in self.labels}
        self._max_new_tokens = 2 + max(len(self._tokens(x.name)) for x in self.labels)

    # ---- the prompt ---------------------------------------------------------------------
    def _tokens(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def _system(self, labels: Sequence[LabelInfo]) -> str:
        lines = [f"- {x.name}: {' '.join(x.description.split())}" for x in labels]
        return SYSTEM + "\n".join(lines)

    def render(self, text: str, labels: Sequence[LabelInfo] | None = None) -> str:
        messages = [{"role": "system", "content": self._system(labels or self.labels)},
                    {"role": "user", "content": f"Message: {text.strip()}"}]
        return self._formatter(messages=messages).prompt  # type: ignore[arg-type]

    def _fit_labels(self) -> tuple[list[LabelInfo], PromptFit]:
        """The longest prefix of the schema's labels whose prompt leaves room for an item."""
        budget = self.n_ctx - ITEM_TOKEN_BUDGET - 40  # 40: the answer and the template's tags
        lo, hi = 0, len(self.all_labels)
        while lo < hi:  # binary search: tokenising the whole list once per label is slow
            mid = (lo + hi + 1) // 2
            if len(self._tokens(self.render("", self.all_labels[:mid]))) <= budget:
                lo = mid
            else:
                hi = mid - 1
        if lo == 0:
            raise ValueError(f"not even one label fits a context of {self.n_ctx} tokens")
        labels = self.all_labels[:lo]
        return labels, PromptFit(lo, len(self.all_labels), len(self._tokens(self.render("",
                                                                                         labels))))

    # ---- classification -----------------------------------------------------------------
    def match(self, answer: str) -> str | None:
        """The label name nearest to what the model wrote (None if it wrote nothing)."""
        key = _normalise(answer)
        if not key:
            return None
        if key in self._by_key:
            return self._by_key[key]
        nearest = difflib.get_close_matches(key, list(self._by_key), n=1, cutoff=0.0)
        return self._by_key[nearest[0]] if nearest else None

    def classify(self, texts: Sequence[str]) -> list[Decision]:
        with self._lock:
            return [self._one(text) for text in texts]

    def _one(self, text: str) -> Decision:
        prompt = self._tokens(self.render(text))
        limit = self.n_ctx - self._max_new_tokens - 1
        if len(prompt) > limit:  # a very long item: keep the list, cut the item's end
            prompt = prompt[: limit - 8] + prompt[-8:]
        # Generated tokens are dropped next time by resetting n_tokens to the shared prefix,
        # so the cache is remembered as the prompt alone.
        self._cached = eval_reusing_prefix(self._llm, self._cached, prompt)
        generated: list[int] = []
        log_p = 0.0
        keys = list(self._by_key)
        for _ in range(self._max_new_tokens):
            logits = np.ctypeslib.as_array(self._llm._ctx.get_logits(),
                                           shape=(self._llm.n_vocab(),)).astype(np.float64)
            token = int(np.argmax(logits))
            piece = self._llm.detokenize([token]).decode("utf-8", "ignore")
            if token == self._llm.token_eos() or "\n" in piece or "<|" in piece:
                break
            top = logits[token]
            log_p += -float(np.log(np.exp(logits - top).sum()))  # log softmax of the argmax
            generated.append(token)
            so_far = _normalise(self._llm.detokenize(generated).decode("utf-8", "ignore"))
            # Stop as soon as the answer names a label that no other label name extends.
            if so_far in self._by_key and not any(
                    k != so_far and k.startswith(so_far) for k in keys):
                break
            self._llm.eval([token])
        answer = self._llm.detokenize(generated).decode("utf-8", "ignore")
        label = self.match(answer)
        confidence = float(np.exp(log_p)) if generated else 0.0
        if label is None:
            return Decision(None, confidence, "no_match", [], judge_calls=1,
                            model_id=self.model_id, prompt_version=self.prompt_version)
        status: Status = "accepted" if confidence >= self.cutoff else "needs_review"
        return Decision(label, confidence, status, [], [label], judge_calls=1,
                        model_id=self.model_id, prompt_version=self.prompt_version)

    def close(self) -> None:
        self._llm.close()
