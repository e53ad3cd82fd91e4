"""What the calibrator is fitted on once there are reviews: each reviewed item classified again,
now, against the label index without its own exemplar.

The model's decision on an item was made before that item (and often every other review) joined
the index as an exemplar. Items classified later meet all of them: on the Banking77 train dev
split with 10 reviewed items per label, retrieval was right for 0.797 of the reviewed items as
they were classified (mean score 0.633, margin 0.104) and is right for 0.848 of new items (score
0.752, margin 0.131). A calibrator fitted on the old decisions gave the new items a mean
confidence of 0.885 (ECE 0.039). Classified again with its own vector left out, a reviewed item
looks like a new item of the current index (0.853 right, score 0.751, margin 0.133; one
exemplar fewer for its label), the leave-one-out the schema prior uses for the schema's examples
(app/rac/prior.py); fitted on those, mean confidence 0.856, ECE 0.017
(bench/review_calibration.py, docs/results.md).

The judge's P(yes) is not asked again: an answer stored for the same label is kept (the judge's
answer depends on the item and the label, not on the index), other labels count as not asked.

With a learnt scorer (app/rac/scorer.py) leaving out the exemplar is not enough: the head was
trained on the reviewed items themselves. Measured on the dev split (10 and 20 reviewed per
label, seeds 0-1): scored by that head the left-out reviews were right for 0.966-0.974 against
0.859-0.892 for new items, and a calibrator fitted on them accepted 98-100% of dev at precision
0.86-0.89 (ECE 0.046-0.080). So each reviewed item is ranked by the scorer's held-out head of its
fold (cross-fitting: fitted without that fold's reviews), which makes it look like a new item
again (0.865-0.896 right against 0.859-0.892); the calibrator fitted on those had dev ECE
0.012-0.018. A stored scorer without held-out heads (fitted before they existed) keeps the
stored features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.rac.calibration import features
from app.rac.decision import TraceStep
from app.rac.index import LabelIndex
from app.rac.scorer import SHORTLIST, LearntScorer


def left_out_traces(index: LabelIndex, keys: Sequence[str], vectors: np.ndarray, top_k: int,
                    scorer: LearntScorer | None = None,
                    stored: Sequence[Sequence[dict | TraceStep]] | None = None
                    ) -> list[list[TraceStep]]:
    """Each reviewed item's trace as the engine would make it now (without its own exemplar),
    with the judge's stored answers (`stored`: the traces of its model decisions) kept."""
    reranks = scorer is not None and scorer.applies_to(index)
    scores, ids = index.search_without_own(vectors, keys, max(top_k, SHORTLIST) if reranks
                                           else top_k)
    if scorer is None or not reranks:
        candidates = index.as_candidates(scores, ids)
    else:  # each item by the head that never saw it, where the scorer has held-out heads
        candidates = [[] for _ in keys]
        by_head: dict[int, tuple[LearntScorer, list[int]]] = {}
        for i, key in enumerate(keys):
            head = scorer.without(key) or scorer
            by_head.setdefault(id(head), (head, []))[1].append(i)
        for head, rows in by_head.values():
            ranked = (index.as_candidates(scores[rows, :top_k], ids[rows, :top_k])
                      if head.is_identity else
                      head.rerank_scored(index, vectors[rows], scores[rows], ids[rows], top_k))
            for i, cands in zip(rows, ranked, strict=True):
                candidates[i] = cands
    traces = [[c.trace_step() for c in cands] for cands in candidates]
    for trace, old in zip(traces, stored or [], strict=False):
        asked = {}
        for step in old:
            s = step if isinstance(step, dict) else vars(step)
            if s.get("p_yes") is not None:
                asked[s["label"]] = s["p_yes"]
        for step in trace:
            step.p_yes = asked.get(step.label)
    return traces


def retrieval_chose(trace: Sequence[dict | TraceStep], label: str | None) -> bool:
    """Was the decision retrieval's top label, with the judge asked about nothing else (the
    cascade's decisions)? Only those can be made again without the judge; a label the judge
    picked further down (sequential, window, multi-label) keeps its stored features."""
    steps = [s if isinstance(s, dict) else vars(s) for s in trace]
    return bool(steps) and steps[0]["label"] == label and all(
        s.get("p_yes") is None for s in steps[1:])


def refit_rows(index: LabelIndex, keys: Sequence[str],
               stored: Sequence[Sequence[dict | TraceStep]], model_labels: Sequence[str | None],
               reviewed: Sequence[str | None], top_k: int,
               scorer: LearntScorer | None = None) -> tuple[list[list[float]], list[bool]]:
    """(calibrator features, was the label right) of each reviewed model decision that proposed
    a label: made again now without the item's own exemplar where retrieval chose it and the
    item has an exemplar in the index (`keys`), else as stored; all as stored while a learnt
    `scorer` without held-out heads ranks the index (it has seen the reviewed items: see the
    module docstring)."""
    x: list[list[float] | None] = [features(t, m) for t, m in zip(stored, model_labels,
                                                                   strict=True)]
    y = [m == r for m, r in zip(model_labels, reviewed, strict=True)]
    if scorer is not None and scorer.applies_to(index) and not scorer.held_out:
        again: list[int] = []
    else:
        again = [i for i, (t, m) in enumerate(zip(stored, model_labels, strict=True))
                 if x[i] is not None and retrieval_chose(t, m)]
    found, vectors = index.exemplar_vectors([keys[i] for i in again])
    rows = [again[j] for j in found]
    traces = left_out_traces(index, [keys[i] for i in rows], vectors, top_k, scorer,
                             [stored[i] for i in rows])
    for i, trace in zip(rows, traces, strict=True):
        if trace:
            x[i] = features(trace, trace[0].label)
            y[i] = trace[0].label == reviewed[i]
    kept = [i for i, row in enumerate(x) if row is not None]
    return [x[i] for i in kept], [y[i] for i in kept]  # type: ignore[misc]
