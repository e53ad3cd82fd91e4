"""The learnt scorer: a linear head on the frozen item embeddings, trained on the label index.

Retrieval scores a label by its nearest profile and examples; it never learns which directions of
the embedding space separate two labels. The scorer does: a multinomial logistic regression over
the embedder's vectors, trained on every labelled vector the index holds (each label's profile,
the schema's examples and the reviewed items) and on the schema's unreviewed items with labels
propagated from those (app/rac/propagation.py, weighted less), re-ranks the index's shortlist by

    score = retrieval score + BLEND * log P_head(label | item)

With no reviewed item the scorer is the identity (the ranking is retrieval's, unchanged), so
schema-only behaviour is exactly what it was. The trace records the blended score as the
candidate's `score` (the calibrator learns confidence from it) beside the raw `retrieval_score`.

Measured on the dev split of Banking77 train (bench/learnt_scorer.py, docs/results.md): +0.012 /
+0.015 / +0.020 top-1 over retrieval with 5 / 10 / 20 reviewed items per label, and the
unreviewed rest of train (6,500-7,600 items) as the unlabelled pool another +0.024 / +0.009 /
+0.015; C, BLEND and the propagation were chosen there. A fit with 1,540 reviews and that pool
takes ~17 s (2 shared cores, load 7), so refits run in the background (app/scorer/) and never
inside a request.
"""

from __future__ import annotations

import io
import time
import zlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from app.rac.index import Candidate, LabelIndex
from app.rac.propagation import propagate

BLEND = 0.1
"""Weight of the head's log-probability against the retrieval score (dev: best of 0.02-0.2 at
5, 10 and 20 reviewed per label)."""
C = 10.0
"""Inverse L2 strength of the logistic regression (dev: 10 beat 1 and 100 at every count)."""
SHORTLIST = 20
"""Candidates taken from the index before re-ranking: the head may lift a label from further
down than top_k (the right label is in retrieval's top 20 for >99% of dev items)."""
MAX_ITER = 300
UNLABELLED_WEIGHT = 0.3
"""Weight of an unreviewed item's propagated label in the fit, against 1 for a review (dev: 1.0
was within 0.003 at 5 and 10 per label, 0.004 worse at 20, and its fits converged slower)."""
CROSS_FOLDS = 5
"""Held-out heads a cross-fitted scorer carries, each fitted without one fold of the reviews: the
calibrator learns from each reviewed item as ranked by a head that never saw it
(app/rac/review_probes.py). The head that ranks new items has seen every review: ranked by it,
reviewed items were right for 0.97 against 0.86-0.89 of new items on the Banking77 dev split,
and a calibrator fitted on them over-confident."""


def fold_of(key: str, folds: int = CROSS_FOLDS) -> int:
    """A reviewed item's cross-fitting fold, fixed by its exemplar key: the same in every process
    and refit, so nothing is stored per item."""
    return zlib.crc32(key.encode()) % folds


@dataclass(frozen=True)
class LearntScorer:
    """Scores every label of one schema content (`label_names`); identity when untrained."""

    version: int = 0
    label_names: tuple[str, ...] = ()
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    blend: float = BLEND
    n_reviews: int = 0
    n_unlabelled: int = 0
    """Unreviewed items whose propagated labels the fit used."""
    fit_seconds: float = 0.0
    held_out: tuple[LearntScorer, ...] = ()
    """Cross-fitted heads (CROSS_FOLDS, or none): the one of fold f never saw the reviews whose
    `fold_of` is f."""

    @property
    def is_identity(self) -> bool:
        return self.weights.size == 0

    def applies_to(self, index: LabelIndex) -> bool:
        """Trained on this index's labels (a schema change needs a refit first) and on vectors
        of its embedder's width (a service switched to another embedder, e.g. MiniLM's 384
        dimensions to MPNet's 768, ranks without it until the next refit)."""
        return (not self.is_identity and self.weights.shape[1] == index.dim
                and self.label_names == tuple(x.name for x in index.labels))

    def without(self, key: str) -> LearntScorer | None:
        """The held-out head that never saw the reviewed item `key` (None: not cross-fitted)."""
        return self.held_out[fold_of(key, len(self.held_out))] if self.held_out else None

    def log_proba(self, vectors: np.ndarray) -> np.ndarray:
        logits = np.asarray(vectors, dtype=np.float32) @ self.weights.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def rerank(self, index: LabelIndex, vectors: np.ndarray, top_k: int
               ) -> list[list[Candidate]]:
        """Each item's best `top_k` labels among the index's SHORTLIST, re-scored with the head.

        Vectorised over the index's score arrays: only the kept candidates become objects."""
        scores, ids = index.search(vectors, max(top_k, SHORTLIST))
        return self.rerank_scored(index, vectors, scores, ids, top_k)

    def rerank_scored(self, index: LabelIndex, vectors: np.ndarray, scores: np.ndarray,
                      ids: np.ndarray, top_k: int) -> list[list[Candidate]]:
        """`rerank` of a shortlist already scored by the index ((n, SHORTLIST) scores and
        label ids, -1 for none), e.g. one searched without the item's own exemplar."""
        logp = self.log_proba(vectors)
        valid = ids >= 0
        blended = np.where(valid, scores + self.blend * np.take_along_axis(
            logp, np.where(valid, ids, 0), axis=1), -np.inf)
        order = np.argsort(-blended, axis=1, kind="stable")[:, :top_k]
        out = []
        for row_ids, row_scores, row_raw in zip(np.take_along_axis(ids, order, axis=1),
                                                np.take_along_axis(blended, order, axis=1),
                                                np.take_along_axis(scores, order, axis=1),
                                                strict=True):
            out.append([Candidate(int(i), index.labels[int(i)].name, rank, float(score),
                                  float(raw))
                        for rank, (i, score, raw) in enumerate(zip(row_ids, row_scores, row_raw,
                                                                   strict=True))
                        if i >= 0])
        return out

    # ---- persistence ----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The head (not the held-out heads: `held_out_to_bytes`, read only by calibrator
        refits, so a process ranking items never parses them)."""
        buffer = io.BytesIO()
        # label names as a fixed-width unicode array: loading then needs no pickle, so a
        # stored scorer read back from the database can never run code
        np.savez(buffer, weights=self.weights, bias=self.bias,
                 label_names=np.array(self.label_names, dtype=np.str_))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, version: int, blend: float, n_reviews: int,
                   fit_seconds: float = 0.0) -> LearntScorer:
        arrays = np.load(io.BytesIO(data), allow_pickle=False)
        return cls(version=version, label_names=tuple(str(x) for x in arrays["label_names"]),
                   weights=arrays["weights"].astype(np.float32),
                   bias=arrays["bias"].astype(np.float32), blend=blend, n_reviews=n_reviews,
                   fit_seconds=fit_seconds)

    def held_out_to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        arrays: dict[str, Any] = {}
        for i, head in enumerate(self.held_out):
            arrays[f"weights_{i}"], arrays[f"bias_{i}"] = head.weights, head.bias
        np.savez(buffer, allow_pickle=False, **arrays)
        return buffer.getvalue()

    def with_held_out_from_bytes(self, data: bytes) -> LearntScorer:
        arrays = np.load(io.BytesIO(data), allow_pickle=False)
        heads: list[LearntScorer] = []
        while f"weights_{len(heads)}" in arrays:
            i = len(heads)
            heads.append(replace(self, weights=arrays[f"weights_{i}"].astype(np.float32),
                                 bias=arrays[f"bias_{i}"].astype(np.float32), held_out=()))
        return replace(self, held_out=tuple(heads))


IDENTITY_SCORER = LearntScorer()


def fit_scorer(index: LabelIndex, version: int, c: float = C, blend: float = BLEND,
               unlabelled: np.ndarray | None = None,
               unlabelled_weight: float = UNLABELLED_WEIGHT) -> LearntScorer:
    """Fit the head on the index's labelled vectors; the identity when nothing was reviewed.

    `unlabelled`: vectors of the schema's unreviewed items. Their labels propagated from the
    labelled vectors (app/rac/propagation.py) join the fit at `unlabelled_weight` each."""
    started = time.perf_counter()
    points = _Points.of(index, unlabelled, unlabelled_weight)
    if points is None:
        return replace(IDENTITY_SCORER, version=version)
    full = _as_scorer(_fit(points, c), points.present, index, version, blend)
    return replace(full, n_reviews=points.n_reviews, n_unlabelled=points.n_unlabelled,
                   fit_seconds=time.perf_counter() - started)


def with_held_out_heads(scorer: LearntScorer, index: LabelIndex, c: float = C,
                        unlabelled: np.ndarray | None = None,
                        unlabelled_weight: float = UNLABELLED_WEIGHT) -> LearntScorer:
    """`scorer` (fitted by `fit_scorer` on this index with these arguments) with its
    CROSS_FOLDS held-out heads, each fitted the same way without its fold's reviews, starting
    from the full head's solution (fewer solver steps)."""
    if scorer.is_identity:
        return scorer
    keys = index.exemplar_keys()
    heads = []
    for fold in range(CROSS_FOLDS):
        held = [key for key in keys if fold_of(key) == fold]
        points = _Points.of(index, unlabelled, unlabelled_weight, leave_out=held)
        if points is None:  # every review is in this fold: retrieval alone held them out
            heads.append(replace(IDENTITY_SCORER, version=scorer.version))
            continue
        heads.append(_as_scorer(_fit(points, c, warm=scorer), points.present, index,
                                scorer.version, scorer.blend))
    return replace(scorer, held_out=tuple(heads))


@dataclass(frozen=True)
class _Points:
    """What one head is fitted on: labelled vectors, their label ids and sample weights."""

    vectors: np.ndarray
    owners: np.ndarray
    weight: np.ndarray
    n_reviews: int
    n_unlabelled: int

    @property
    def present(self) -> np.ndarray:
        return np.unique(self.owners)

    @classmethod
    def of(cls, index: LabelIndex, unlabelled: np.ndarray | None, unlabelled_weight: float,
           leave_out: list[str] | None = None) -> _Points | None:
        """None where there is nothing to learn: no review (schema-only: retrieval's ranking,
        unchanged, unlabelled items or not) or a single label (nothing to separate, and sklearn
        refuses one class).

        Left-out reviews are not even unlabelled items here: a head fitted on an item's own
        propagated label has learnt that label for that very vector (on Banking77's examples
        as reviews, two per label, the held-out heads then ranked 0.57 of them right where
        retrieval alone ranks 0.86), so it would not score it as an item it never saw."""
        vectors, owners, n_reviews = index.training_points(leave_out or ())
        if n_reviews == 0 or len(np.unique(owners)) < 2:
            return None
        weight = np.ones(len(vectors))
        n_unlabelled = 0
        if unlabelled is not None and len(unlabelled):
            unreviewed = np.asarray(unlabelled, dtype=np.float32).reshape(-1, index.dim)
            pseudo, _ = propagate(vectors, owners, unreviewed, len(index.labels))
            reached = pseudo >= 0
            n_unlabelled = int(reached.sum())
            vectors = np.concatenate([vectors, unreviewed[reached]])
            owners = np.concatenate([owners, pseudo[reached]])
            weight = np.concatenate([weight, np.full(n_unlabelled, unlabelled_weight)])
        return cls(vectors, owners, weight, n_reviews, n_unlabelled)


def _fit(points: _Points, c: float, warm: LearntScorer | None = None) -> Any:
    from sklearn.linear_model import LogisticRegression  # a dependency of sentence-transformers

    present = points.present
    model = LogisticRegression(C=c, max_iter=MAX_ITER)
    if warm is not None and len(present) > 2:  # sklearn reads a warm start from coef_
        model.set_params(warm_start=True)
        model.coef_ = warm.weights[present].astype(np.float64)
        model.intercept_ = warm.bias[present].astype(np.float64)
    return model.fit(points.vectors, points.owners, sample_weight=points.weight)


def _as_scorer(model: Any, present: np.ndarray, index: LabelIndex, version: int,
               blend: float) -> LearntScorer:
    # A label with no vector at all (only when profiles are shared) never wins through the head.
    weights = np.zeros((len(index.labels), index.dim), dtype=np.float32)
    bias = np.full(len(index.labels), -30.0, dtype=np.float32)
    if len(present) == 2:  # sklearn's binary model has one row: the odds of the second class
        weights[present[1]], bias[present[1]], bias[present[0]] = model.coef_[0], \
            model.intercept_[0], 0.0
    else:
        weights[present] = model.coef_
        bias[present] = model.intercept_
    return LearntScorer(version=version, label_names=tuple(x.name for x in index.labels),
                        weights=weights, bias=bias, blend=blend)
