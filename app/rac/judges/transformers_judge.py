"""A judge run by transformers on the CPU: a GGUF file dequantized into torch (float32).

Used for trained judges (`rac judge train`) when measured faster than llama.cpp, and to check the
GGUF a training writes: both backends must read the same P(yes) from it.

Questions are answered in batches. The key-value cache of the prompt prefix every question of a
call shares (the system message) is computed once and reused, and questions about the same item
reuse the item's prefix too (the text comes before the label in the prompt); only the rest of each
prompt is run, right-padded, many at once. Padding needs no mask: attention is causal, so a real
token never sees the padding that follows it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app.rac.judge import Judge
from app.rac.prompts import Question
from app.rac.trained_prompt import TRAINED_PROMPT_VERSION, trained_messages_for

Messages = Callable[[Question], list[dict[str, str]]]


def _common_prefix(rows: Sequence[Sequence[int]]) -> int:
    first = rows[0]
    n = min(len(r) for r in rows)
    for i in range(n):
        token = first[i]
        if any(r[i] != token for r in rows):
            return i
    return n


class TransformersJudge(Judge):
    def __init__(self, model_path: Path, *, model_id: str | None = None,
                 messages: Messages = trained_messages_for,
                 prompt_version: str = TRAINED_PROMPT_VERSION, threads: int | None = None,
                 batch_size: int = 16) -> None:
        super().__init__()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from app.rac.training import tokenizer_answer_ids

        if threads:
            torch.set_num_threads(threads)
        path = Path(model_path)
        self._tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        self._model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                           dtype=torch.float32)
        self._model.eval()
        yes, no = tokenizer_answer_ids(self._tokenizer)
        head = self._model.lm_head.weight.detach()
        self._yes_rows, self._no_rows = head[yes].clone(), head[no].clone()
        self._messages = messages
        self.model_id = model_id or f"transformers:{path.stem}"
        self.prompt_version = prompt_version
        self.batch_size = batch_size
        self._lock = threading.Lock()  # one model, one forward pass at a time
        self._prefix: tuple[tuple[int, ...], Any] | None = None

    def tokens(self, question: Question) -> list[int]:
        prompt = self._tokenizer.apply_chat_template(self._messages(question), tokenize=False,
                                                     add_generation_prompt=True)
        return list(self._tokenizer(prompt, add_special_tokens=False).input_ids)

    def _p_yes(self, questions: list[Question]) -> list[float]:
        import torch

        tokens = [self.tokens(q) for q in questions]
        answers = [0.0] * len(questions)
        with self._lock, torch.no_grad():
            # Always keep one token after a prefix: its logits are the answer.
            shared = min(_common_prefix(tokens), min(len(t) for t in tokens) - 1)
            base = self._prefix_cache(tokens[0][:shared])
            by_item: dict[str, list[int]] = {}
            for i, q in enumerate(questions):
                by_item.setdefault(q.text, []).append(i)
            singles = [ids[0] for ids in by_item.values() if len(ids) == 1]
            groups = [ids for ids in by_item.values() if len(ids) > 1]
            for i, p in zip(singles, self._run(base, shared, [tokens[i] for i in singles]),
                            strict=True):
                answers[i] = p
            for ids in groups:
                rows = [tokens[i] for i in ids]
                own = min(_common_prefix(rows), min(len(r) for r in rows) - 1)
                item = self._extend(base, rows[0][shared:own]) if own > shared else base
                for i, p in zip(ids, self._run(item, own, rows), strict=True):
                    answers[i] = p
        return answers

    def _prefix_cache(self, prefix: list[int]) -> Any:
        """Key/value tensors of the shared prefix (kept: the system message rarely changes)."""
        key = tuple(prefix)
        if self._prefix is None or self._prefix[0] != key:
            self._prefix = (key, self._extend(None, prefix))
        return self._prefix[1]

    def _extend(self, past: Any, tokens: list[int]) -> Any:
        """Key/value tensors per layer of `past` followed by `tokens` (batch of one)."""
        import torch
        from transformers import DynamicCache

        if not tokens:
            return past
        cache = DynamicCache(list(past)) if past is not None else DynamicCache()
        start = cache.get_seq_length()
        positions = torch.arange(start, start + len(tokens)).unsqueeze(0)
        self._model.model(input_ids=torch.tensor([tokens]), cache=cache, use_cache=True,
                          position_ids=positions)
        return [(k, v) for k, v, *_ in cache]

    def _run(self, past: Any, shared: int, rows: Sequence[list[int]]) -> list[float]:
        """P(yes) of each full prompt in `rows`, whose first `shared` tokens `past` holds."""
        import torch
        from transformers import DynamicCache

        from app.rac.training import pad

        out = [0.0] * len(rows)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))  # little padding
        for start in range(0, len(order), self.batch_size):
            ids = order[start:start + self.batch_size]
            suffixes, lengths = pad([rows[i][shared:] for i in ids])
            n = len(ids)
            cache = (DynamicCache([(k.expand(n, -1, -1, -1).contiguous(),
                                    v.expand(n, -1, -1, -1).contiguous()) for k, v in past])
                     if past is not None else None)
            positions = torch.arange(shared, shared + suffixes.shape[1]).unsqueeze(0)
            hidden = self._model.model(input_ids=suffixes, cache=cache, use_cache=cache is not None,
                                       position_ids=positions).last_hidden_state
            last = hidden[torch.arange(n), lengths - 1]
            logit = ((last @ self._yes_rows.T).logsumexp(-1)
                     - (last @ self._no_rows.T).logsumexp(-1))
            for i, p in zip(ids, torch.sigmoid(logit).tolist(), strict=True):
                out[i] = p
        return out
