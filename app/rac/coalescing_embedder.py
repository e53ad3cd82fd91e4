"""One forward pass for the texts of concurrent callers (dynamic batching).

Every classify request embeds its one text. Under concurrent requests each did its own forward
pass of batch size 1, all competing for the same cores: with 8 clients on 2 cores the embedding
was 65% of the server's CPU and a request's latency grew with the number of passes queued
before it. A batch of 8 short texts costs little more than one text, so concurrent callers are
served together, as LLM servers batch concurrent requests (vLLM's continuous batching):

* a caller with nobody embedding runs at once, alone: no waiting window, no added latency;
* callers who arrive while a pass is running queue up; when the pass ends, the first of them
  takes every queued text into the next pass and hands each caller its own rows.

Results are the wrapped embedder's, row for row (within float rounding: texts padded to a
longer batch neighbour get the same vector up to ~1e-6, the attention mask hides the padding).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from app.rac.embedder import Embedder


class _Call:
    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.done = threading.Event()
        self.leads = False  # woken to run the next pass rather than with a result
        self.vectors: np.ndarray | None = None
        self.error: BaseException | None = None


class CoalescingEmbedder(Embedder):
    def __init__(self, inner: Embedder, max_texts: int = 256) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.model_id = inner.model_id
        self.max_texts = max_texts
        """A pass takes queued calls up to this many texts (a caller's own batch may be more)."""
        self._lock = threading.Lock()
        self._queued: list[_Call] = []
        self._running = False

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        call = _Call(list(texts))
        with self._lock:
            self._queued.append(call)
            leads = not self._running
            self._running = True
        if not leads:
            call.done.wait()
            if not call.leads:
                return self._result(call)
        self._run_pass()
        return self._result(call)

    def _run_pass(self) -> None:
        """Embed the queued calls (the leader's first), then hand the lead to the next caller."""
        with self._lock:
            batch: list[_Call] = []
            size = 0
            while self._queued and (not batch or size + len(self._queued[0].texts)
                                    <= self.max_texts):
                size += len(self._queued[0].texts)
                batch.append(self._queued.pop(0))
        try:
            vectors = self.inner.embed([text for call in batch for text in call.texts])
            start = 0
            for call in batch:
                call.vectors = vectors[start:start + len(call.texts)]
                start += len(call.texts)
        except BaseException as exc:  # every caller of the pass gets the error
            for call in batch:
                call.error = exc
        with self._lock:
            if self._queued:
                following = self._queued[0]
                following.leads = True
                following.done.set()
            else:
                self._running = False
        for call in batch[1:]:
            call.done.set()

    @staticmethod
    def _result(call: _Call) -> np.ndarray:
        if call.error is not None:
            raise call.error
        assert call.vectors is not None
        return call.vectors
