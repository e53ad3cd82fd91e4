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

Not while a learnt scorer ranks the schema's items (app/rac/scorer.py): its head was trained on
the reviewed items themselves, so leaving out the exemplar leaves the item in the head. Measured
on the dev split with the scorer (10 and 20 reviewed per label, seeds 0-1): the left-out reviews
were right for 0.966-0.974 against 0.859-0.892 for new items, and a calibrator fitted on them
accepted 98-100% of dev at precision 0.86-0.89 (ECE 0.046-0.080), worse than the stored
decisions (85-90% at 0.930-0.940, ECE 0.061-0.069). With a scorer the stored features are kept
until the head's scores of reviewed items come from fits that did not see them (cross-fitting).
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
    candidates = (scorer.rerank_scored(index, vectors, scores, ids, top_k)  # type: ignore[union-attr]
                  if reranks else index.as_candidates(scores, ids))
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
    `scorer` ranks the index (it has seen the reviewed items: see the module docstring)."""
    x: list[list[float] | None] = [features(t, m) for t, m in zip(stored, model_labels,
                                                                   strict=True)]
    y = [m == r for m, r in zip(model_labels, reviewed, strict=True)]
    if scorer is not None and scorer.applies_to(index):
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
