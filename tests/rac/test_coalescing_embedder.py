"""Concurrent callers share forward passes, each gets its own rows, errors reach every caller."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from app.config import EmbedderSettings
from app.rac.coalescing_embedder import CoalescingEmbedder
from app.rac.embedder import Embedder
from app.runtime import make_embedder

TEXTS = ["I was charged twice for one purchase", "my card has not arrived yet",
         "how do I top up by bank transfer", "the exchange rate was wrong",
         "please cancel the transfer I just made", "can I get a virtual card",
         "why was my cash withdrawal declined", "I forgot my passcode"]


class SlowCountingEmbedder(Embedder):
    """The bundled embedder, slowed so that concurrent callers certainly overlap a pass."""

    def __init__(self, inner: Embedder, seconds: float = 0.2, fail_on: str | None = None) -> None:
        self.inner, self.seconds, self.fail_on = inner, seconds, fail_on
        self.dim, self.model_id = inner.dim, inner.model_id
        self.batches: list[int] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(len(texts))
        time.sleep(self.seconds)
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError("the model fell over")
        return self.inner.embed(texts)


@pytest.fixture(scope="module")
def bundled() -> Embedder:
    embedder = make_embedder(EmbedderSettings())
    return embedder.inner if isinstance(embedder, CoalescingEmbedder) else embedder


def embed_concurrently(embedder: Embedder, calls: list[list[str]]) -> list[object]:
    results: list[object] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def call(i: int) -> None:
        start.wait()
        try:
            results[i] = embedder.embed(calls[i])
        except Exception as exc:  # noqa: BLE001 - the test looks at what each caller got
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_concurrent_callers_share_passes_and_get_their_own_rows(bundled):
    slow = SlowCountingEmbedder(bundled)
    coalescing = CoalescingEmbedder(slow)
    calls = [[text] for text in TEXTS] + [TEXTS[:3]]
    results = embed_concurrently(coalescing, calls)
    # The first caller runs alone; everyone who arrived meanwhile shares the next pass.
    assert len(slow.batches) < len(calls), slow.batches
    assert sum(slow.batches) == sum(len(c) for c in calls)
    for texts, got in zip(calls, results, strict=True):
        assert isinstance(got, np.ndarray) and got.shape == (len(texts), bundled.dim)
        np.testing.assert_allclose(got, bundled.embed(texts), atol=1e-5)


def test_a_lone_caller_runs_at_once(bundled):
    slow = SlowCountingEmbedder(bundled, seconds=0)
    coalescing = CoalescingEmbedder(slow)
    for text in TEXTS[:3]:
        np.testing.assert_allclose(coalescing.embed([text]), bundled.embed([text]), atol=1e-6)
    assert slow.batches == [1, 1, 1]
    assert coalescing.embed([]).shape == (0, bundled.dim)


def test_an_error_reaches_every_caller_of_its_pass_and_the_next_pass_works(bundled):
    slow = SlowCountingEmbedder(bundled, fail_on="boom")
    coalescing = CoalescingEmbedder(slow)
    first = threading.Thread(target=coalescing.embed, args=(["a first, lone pass"],))
    first.start()
    time.sleep(0.05)  # the next callers queue behind the running pass, and share one
    results = embed_concurrently(coalescing, [["boom"], [TEXTS[0]], [TEXTS[1]]])
    first.join(60)
    assert all(isinstance(r, RuntimeError) for r in results), results
    np.testing.assert_allclose(coalescing.embed([TEXTS[2]]), bundled.embed([TEXTS[2]]),
                               atol=1e-6)
