"""Saved llama.cpp KV states of prompt prefixes, least recently used evicted first.

With the label-first prompts (app/rac/prompts.py, `yn-2` and `yn-3`) every question about one
label starts with the same long prefix (system rule + label name, description and examples). Its
KV cache is evaluated once, saved here, and loaded for every later question about that label, so
a question costs only its item's tokens.

Only the sequence's KV cells are saved (`llama_state_seq_get_data`): llama-cpp-python's
`Llama.save_state` also copies its logits buffer (n_batch x n_vocab floats, ~100 MB for SmolLM2's
49k vocabulary) and would make each state hundreds of times larger than its KV cells.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PrefixState:
    tokens: tuple[int, ...]
    """The tokens whose KV cells the state holds (positions 0..len-1 of sequence 0)."""
    data: bytes

    @property
    def nbytes(self) -> int:
        return len(self.data)


def save_prefix(llm: Any, tokens: list[int]) -> PrefixState:
    """The state of sequence 0 of `llm`, which must hold exactly `tokens`."""
    import llama_cpp

    ctx = llm._ctx.ctx
    size = llama_cpp.llama_state_seq_get_size(ctx, 0)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
    if written == 0 or written > size:
        raise RuntimeError(f"llama.cpp could not save the prefix state ({written} of {size})")
    return PrefixState(tuple(tokens), ctypes.string_at(buffer, written))


def load_prefix(llm: Any, state: PrefixState) -> None:
    """Replace sequence 0 of `llm` by the saved prefix; `llm.eval` then continues after it."""
    import llama_cpp

    llm._ctx.kv_cache_seq_rm(0, 0, -1)
    buffer = (ctypes.c_uint8 * state.nbytes).from_buffer_copy(state.data)
    if llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buffer, state.nbytes, 0) == 0:
        raise RuntimeError("llama.cpp could not load a saved prefix state")
    n = len(state.tokens)
    llm.input_ids[:n] = state.tokens
    llm.n_tokens = n


class PrefixStates:
    """An LRU map prompt prefix -> PrefixState, bounded by the bytes the states hold."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = self.misses = self.evictions = 0
        self._states: OrderedDict[str, PrefixState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, key: str) -> bool:
        return key in self._states

    def get(self, key: str) -> PrefixState | None:
        state = self._states.get(key)
        if state is None:
            self.misses += 1
            return None
        self.hits += 1
        self._states.move_to_end(key)
        return state

    def put(self, key: str, state: PrefixState) -> None:
        """Keep `state` unless it alone exceeds the budget; evict the least recently used
        states until the total fits."""
        if state.nbytes > self.max_bytes:
            return
        old = self._states.pop(key, None)
        if old is not None:
            self.bytes -= old.nbytes
        self._states[key] = state
        self.bytes += state.nbytes
        while self.bytes > self.max_bytes:
            _, evicted = self._states.popitem(last=False)
            self.bytes -= evicted.nbytes
            self.evictions += 1

    def clear(self) -> None:
        self._states.clear()
        self.bytes = 0
