"""The label index: FAISS over label vectors, searched for the labels most similar to an item.

Each label has a *profile* vector (its name and description) and *example* vectors (the schema's
examples, plus reviewed items added live as exemplars). A label's score for an item is

    score = w * sim(item, profile) + (1 - w) * max sim(item, example),
    w = max(0.2, 4 / (4 + n_examples))

so a label with few examples leans on its description and one with many reviewed items leans on
them. A reviewed item that is (nearly) the same text as the query makes its label score at least
that similarity. Measured on a 2,000-item dev split of Banking77 train (docs/results.md,
bench/retrieval_rule.py): the rule is within 0.002 of the best fixed weight at every number of
reviewed items per label (0, 1, 2, 5, 10, 20, all), while the best fixed weight moves from 0.6 to
0.2; top-1 0.773 with the schema's two examples (profile only: 0.704), 0.907 with all of train.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from app.rac.decision import TraceStep
from app.rac.embedder import Embedder
from app.rac.prompts import LabelInfo, readable

FORMAT_VERSION = 1
PROFILE_WEIGHT_PRIOR = 4.0  # w = max(floor, prior / (prior + n_examples)), tuned on Banking77
PROFILE_WEIGHT_FLOOR = 0.2  # train: with hundreds of examples the description still counts

# One OpenMP thread for FAISS: on 2 shared cores its threads spin-wait for each other and made a
# one-item search 6-8x slower (68 ms against 9 ms at 10,000 labels); batched searches lose ~15%.
faiss.omp_set_num_threads(1)
# A reviewed item this close to the query is (nearly) the same text: its label wins outright, so
# a text a person already labelled is never proposed a different label.
DUPLICATE_SIMILARITY = 0.97
_DEAD = -1  # owner of an exemplar row that was replaced by a later review of the same item
# Queries scored together: the block holds (queries x labels) arrays, bounded to ~4 MB each.
_BLOCK_QUERIES = 256
_BLOCK_CELLS = 1 << 20
# Up to this many vectors per shortlisted one, similarities come from one matrix product
# against all vectors rather than from gathering the shortlisted ones.
_DENSE_RATIO = 16


@dataclass(frozen=True)
class Candidate:
    label_id: int
    label: str
    rank: int
    score: float
    """What the candidates are ranked by (blended by a learnt scorer when one re-ranked them)."""
    retrieval_score: float | None = None
    """The index's own score when a learnt scorer changed `score`; None: the same as `score`."""

    def trace_step(self) -> TraceStep:
        raw = self.score if self.retrieval_score is None else self.retrieval_score
        return TraceStep(self.label, self.rank, raw, score=self.score)


def profile_text(label: LabelInfo) -> str:
    return f"{readable(label.name)}: {label.description.strip()}"


def text_hash(model_id: str, text: str) -> str:
    return hashlib.sha256(f"{model_id}\0{text}".encode()).hexdigest()


def _shortlist_index(vectors: np.ndarray, dim: int) -> faiss.Index:
    """An exhaustive inner-product index over float16 copies of the vectors.

    It only shortlists: every shortlisted label is then scored exactly from the float32 vectors.
    Half the bytes per scan made the scan about 3x faster than a float32 flat index
    (bench/index_search_profile.py) and a 10,000-label search 1.6x faster (bench/index_scale.py),
    and a shortlist of 4-8x top_k absorbs the rounding (float16 keeps ~3 significant digits of
    a cosine similarity).
    """
    index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16,
                                       faiss.METRIC_INNER_PRODUCT)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


class LabelIndex:
    """Search labels by similarity; thread-safe (exemplars may be added while others search)."""

    def __init__(self, labels: Sequence[LabelInfo], model_id: str, profiles: np.ndarray,
                 profile_hashes: list[str], examples: np.ndarray, example_owner: np.ndarray,
                 example_hashes: list[str]) -> None:
        self.labels = list(labels)
        self.model_id = model_id
        self.dim = int(profiles.shape[1])
        self.label_ids = {label.name: i for i, label in enumerate(self.labels)}
        self._profiles = np.ascontiguousarray(profiles, dtype=np.float32)
        self._profile_hashes = profile_hashes
        self._n_schema_examples = len(example_owner)
        self._example_hashes = example_hashes
        self._examples = np.ascontiguousarray(examples, dtype=np.float32).reshape(-1, self.dim)
        self._owner = np.asarray(example_owner, dtype=np.int64).copy()
        self._profile_index = _shortlist_index(self._profiles, self.dim)
        self._example_index = _shortlist_index(self._examples, self.dim)
        self._rows_by_label: list[list[int]] = [[] for _ in self.labels]
        for row, owner in enumerate(self._owner):
            self._rows_by_label[owner].append(row)
        self._refresh_weights()
        self._exemplar_rows: dict[str, int] = {}
        self.exemplar_watermark = 0  # the caller's id of the newest exemplar added
        self._lock = threading.RLock()

    # ---- building -----------------------------------------------------------------------
    @classmethod
    def build(cls, labels: Sequence[LabelInfo], embedder: Embedder,
              reuse: dict[str, np.ndarray] | None = None) -> LabelIndex:
        """Embed the labels; vectors whose text hash is in `reuse` are not embedded again."""
        reuse = reuse or {}
        profile_texts = [profile_text(label) for label in labels]
        example_texts: list[str] = []
        owner: list[int] = []
        for i, label in enumerate(labels):
            for example in label.examples:
                example_texts.append(example.strip())
                owner.append(i)
        all_texts = profile_texts + example_texts
        hashes = [text_hash(embedder.model_id, t) for t in all_texts]
        missing = sorted({h: i for i, h in enumerate(hashes) if h not in reuse}.values())
        fresh = embedder.embed([all_texts[i] for i in missing]) if missing else None
        known = dict(reuse)
        for j, i in enumerate(missing):
            known[hashes[i]] = fresh[j]  # type: ignore[index]
        vectors = np.stack([known[h] for h in hashes]) if hashes else np.zeros((0, embedder.dim))
        n = len(profile_texts)
        index = cls(labels, embedder.model_id, vectors[:n], hashes[:n],
                    vectors[n:].reshape(-1, embedder.dim), np.array(owner, dtype=np.int64),
                    hashes[n:])
        index.embedded_count = len(missing)
        return index

    embedded_count = 0
    """How many label texts the last build embedded (the rest came from the reuse cache)."""

    def vectors_by_hash(self) -> dict[str, np.ndarray]:
        found = dict(zip(self._profile_hashes, self._profiles, strict=True))
        found.update(zip(self._example_hashes, self._examples[: self._n_schema_examples],
                         strict=True))
        return found

    # ---- persistence --------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write the schema part of the index (exemplars come from the database each load)."""
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "vectors.tmp.npz"
        np.savez(tmp, profiles=self._profiles,
                 examples=self._examples[: self._n_schema_examples],
                 owner=self._owner[: self._n_schema_examples])
        meta = {
            "format": FORMAT_VERSION,
            "model_id": self.model_id,
            "labels": [{"name": x.name, "description": x.description,
                        "examples": list(x.examples)} for x in self.labels],
            "profile_hashes": self._profile_hashes,
            "example_hashes": self._example_hashes,
        }
        (directory / "meta.tmp.json").write_text(json.dumps(meta))
        tmp.replace(directory / "vectors.npz")  # rename last: a half-written index is never read
        (directory / "meta.tmp.json").replace(directory / "meta.json")

    @classmethod
    def load(cls, directory: Path) -> LabelIndex:
        meta = json.loads((directory / "meta.json").read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"index format {meta.get('format')} is not {FORMAT_VERSION}")
        arrays = np.load(directory / "vectors.npz")
        labels = [LabelInfo(x["name"], x["description"], tuple(x["examples"]))
                  for x in meta["labels"]]
        return cls(labels, meta["model_id"], arrays["profiles"], meta["profile_hashes"],
                   arrays["examples"], arrays["owner"], meta["example_hashes"])

    # ---- exemplars ----------------------------------------------------------------------
    def add_exemplars(self, keys: Sequence[str], vectors: np.ndarray, labels: Sequence[str],
                      watermark: int | None = None) -> int:
        """Add reviewed items as example vectors of their labels, without a rebuild.

        `keys` identify items: a later exemplar with the same key replaces the earlier one (a
        re-review). Labels not in this index (e.g. dropped in this schema version) are skipped.
        Returns how many were added.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        added = 0
        with self._lock:
            rows: list[np.ndarray] = []
            owners: list[int] = []
            last = {key: i for i, key in enumerate(keys)}  # one key twice: the later one wins
            for i in sorted(last.values()):
                key, vector, label = keys[i], vectors[i], labels[i]
                old = self._exemplar_rows.pop(key, None)
                if old is not None:
                    self._rows_by_label[self._owner[old]].remove(old)
                    self._owner[old] = _DEAD
                label_id = self.label_ids.get(label) if label is not None else None
                if label_id is None:
                    continue
                row = len(self._owner) + len(rows)
                rows.append(vector)
                owners.append(label_id)
                self._exemplar_rows[key] = row
                self._rows_by_label[label_id].append(row)
                added += 1
            if rows:
                block = np.stack(rows)
                self._owner = np.concatenate([self._owner, np.array(owners, dtype=np.int64)])
                self._examples = np.concatenate([self._examples, block])
                self._example_index.add(block)
            if watermark is not None:
                self.exemplar_watermark = max(self.exemplar_watermark, watermark)
            self._refresh_weights()
        return added

    def _refresh_weights(self) -> None:
        """Per-label example counts and profile weights, kept current instead of being counted
        on every search (0.6 ms per call at 10,000 labels)."""
        self._counts = np.array([len(r) for r in self._rows_by_label], dtype=np.float32)
        self._weight = np.maximum(PROFILE_WEIGHT_FLOOR,
                                  PROFILE_WEIGHT_PRIOR / (PROFILE_WEIGHT_PRIOR + self._counts))

    def training_points(self, leave_out: Collection[str] = ()
                        ) -> tuple[np.ndarray, np.ndarray, int]:
        """Every labelled vector of the index: (vectors, label ids, how many are reviewed items).

        Each label's profile, the schema's examples and the live exemplars but those of the
        `leave_out` keys, copied under the lock so a learner can fit on them while exemplars
        keep arriving."""
        with self._lock:
            alive = self._owner != _DEAD
            dropped = [self._exemplar_rows[key] for key in leave_out
                       if key in self._exemplar_rows]
            alive[dropped] = False
            vectors = np.concatenate([self._profiles, self._examples[alive]])
            owners = np.concatenate([np.arange(len(self.labels), dtype=np.int64),
                                     self._owner[alive]])
            return vectors, owners, len(self._exemplar_rows) - len(dropped)

    def exemplar_keys(self) -> list[str]:
        """The keys of the live exemplars (reviewed items), in the order they were added."""
        with self._lock:
            return sorted(self._exemplar_rows, key=self._exemplar_rows.__getitem__)

    def exemplar_vectors(self, keys: Sequence[str]) -> tuple[list[int], np.ndarray]:
        """(positions in `keys` that have a live exemplar, their vectors)."""
        with self._lock:
            found = [(i, self._exemplar_rows[key]) for i, key in enumerate(keys)
                     if key in self._exemplar_rows]
            vectors = self._examples[[row for _, row in found]].copy()
        return [i for i, _ in found], vectors.reshape(-1, self.dim)

    @property
    def exemplar_count(self) -> int:
        return len(self._exemplar_rows)

    # ---- search -------------------------------------------------------------------------
    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best labels per query vector: (scores, label ids), each (n, k), best first.

        Rows are padded with score -inf and id -1 when the schema has fewer than k labels.
        """
        queries = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        n_labels = len(self.labels)
        k_out = max(1, k)
        scores = np.full((len(queries), k_out), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k_out), -1, dtype=np.int64)
        if not len(queries) or not n_labels:
            return scores, ids
        with self._lock:
            # Shortlist from both indexes, then score the shortlisted labels exactly.
            k_prof = min(n_labels, max(4 * k_out, 32))
            _, prof_ids = self._profile_index.search(queries, k_prof)
            n_rows = self._example_index.ntotal
            k_ex = min(n_rows, max(8 * k_out, 64))
            ex_rows = (self._example_index.search(queries, k_ex)[1] if k_ex
                       else np.zeros((len(queries), 0), dtype=np.int64))
            block = max(1, min(_BLOCK_QUERIES, _BLOCK_CELLS // n_labels))
            for start in range(0, len(queries), block):
                rows = slice(start, start + block)
                scores[rows], ids[rows] = self._score_shortlists(
                    queries[rows], prof_ids[rows], ex_rows[rows], k_out)
        return scores, ids

    def _score_shortlists(self, queries: np.ndarray, prof_ids: np.ndarray, ex_rows: np.ndarray,
                          k_out: int) -> tuple[np.ndarray, np.ndarray]:
        """Score one block of queries' shortlisted labels exactly by the rule, as whole arrays.

        A per-query Python loop over the example hits cost more than the FAISS scans and grew
        with the shortlist (the learnt scorer's 20-wide one ran at 28-55% of top-5's rate)."""
        n_q, n_labels = len(queries), len(self.labels)
        q_of = np.arange(n_q)[:, None]
        # Exact similarities of the example hits (the index's are float16-rounded).
        hit = ex_rows >= 0
        rows = np.where(hit, ex_rows, 0)
        owners = np.where(hit, self._owner[rows], _DEAD)
        alive = owners != _DEAD
        if len(self._examples) <= _DENSE_RATIO * max(1, rows.shape[1]):
            # few example rows: one matrix product against all of them beats gathering each
            # query's hit vectors (memory-bound: 60 MB per block at 160 hits)
            sims = np.take_along_axis(queries @ self._examples.T, rows, axis=1)
        else:
            sims = np.einsum("qkd,qd->qk", self._examples[rows], queries)
        q_hit = np.broadcast_to(q_of, owners.shape)[alive]
        best = np.full((n_q, n_labels), -np.inf, dtype=np.float32)
        np.maximum.at(best, (q_hit, owners[alive]), sims[alive])
        duplicate = alive & (rows >= self._n_schema_examples) & (sims >= DUPLICATE_SIMILARITY)
        dup_best = None
        if duplicate.any():
            dup_best = np.full((n_q, n_labels), -1.0, dtype=np.float32)
            np.maximum.at(dup_best, (np.broadcast_to(q_of, owners.shape)[duplicate],
                                     owners[duplicate]), sims[duplicate])
        # Each query's shortlist: its profile hits and the owners of its example hits, once.
        cand = np.sort(np.concatenate([np.where(prof_ids >= 0, prof_ids, -1), owners], axis=1),
                       axis=1)
        cand[:, 1:][cand[:, 1:] == cand[:, :-1]] = -1  # repeats (owners are sorted together)
        valid = cand >= 0
        safe = np.where(valid, cand, 0)
        if n_labels <= _DENSE_RATIO * cand.shape[1]:
            prof = np.take_along_axis(queries @ self._profiles.T, safe, axis=1)
        else:
            prof = np.einsum("qcd,qd->qc", self._profiles[safe], queries)
        ex = best[q_of, safe]
        counts, weight = self._counts[safe], self._weight[safe]
        unseen = valid & np.isneginf(ex) & (counts > 0)  # shortlisted by profile only
        if unseen.any():
            q_unseen, c_unseen = np.nonzero(unseen)
            ex[q_unseen, c_unseen] = self._max_example_sims(queries, q_unseen, safe[unseen])
        ex = np.where(counts > 0, ex, 0.0)  # a label without examples scores by its profile
        total = np.where(counts > 0, weight * prof + (1 - weight) * ex, prof)
        if dup_best is not None:
            total = np.maximum(total, dup_best[q_of, safe])
        total = np.where(valid, total, -np.inf)
        order = np.argsort(-total, axis=1, kind="stable")[:, :k_out]
        top_ids = np.where(np.take_along_axis(valid, order, axis=1),
                           np.take_along_axis(cand, order, axis=1), -1)
        scores = np.full((n_q, k_out), -np.inf, dtype=np.float32)
        ids = np.full((n_q, k_out), -1, dtype=np.int64)
        scores[:, : order.shape[1]] = np.take_along_axis(total, order, axis=1)
        ids[:, : order.shape[1]] = top_ids
        return scores, ids

    def _max_example_sims(self, queries: np.ndarray, query_of: np.ndarray,
                          label_ids: np.ndarray) -> np.ndarray:
        """Best example similarity of each (query, label) pair (every label has examples), in
        one matrix product of the queries against all those labels' rows."""
        needed, label_pos = np.unique(label_ids, return_inverse=True)
        used, query_pos = np.unique(query_of, return_inverse=True)
        row_lists = [self._rows_by_label[i] for i in needed.tolist()]
        sizes = np.array([len(r) for r in row_lists], dtype=np.int64)
        rows = np.fromiter((row for r in row_lists for row in r), dtype=np.int64,
                           count=int(sizes.sum()))
        sims = queries[used] @ self._examples[rows].T
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        per_label = np.maximum.reduceat(sims, starts, axis=1)
        return per_label[query_pos, label_pos]

    def leave_one_out(self, k: int, limit: int | None = None, seed: int = 0
                      ) -> tuple[list[int], list[list[Candidate]]]:
        """Each schema example searched as if its own vector were not in the index.

        Returns (example rows, in schema order; top-k candidates per example): labelled
        decisions made from the schema alone, which the prior calibrator is fitted on
        (app/rac/prior.py). Scored by the same rule as `search`, exactly over every label (no
        shortlist), schema examples only; at most `limit` examples (a fixed random sample).
        """
        rows, kept, _ = self.schema_probes(k, limit=limit, seed=seed)
        return rows, kept

    def schema_probes(self, k: int, limit: int | None = None, seed: int = 0
                      ) -> tuple[list[int], list[list[Candidate]], list[list[Candidate]]]:
        """`leave_one_out`, and each example searched as if its whole label were not in the
        index: (rows, candidates without the example, candidates without its label).

        The second kind is an out-of-scope item by construction (no remaining label is right):
        what the prior learns "no label of this schema fits" from.
        """
        n = self._n_schema_examples
        rows = np.arange(n)
        if limit is not None and n > limit:
            rows = np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
        examples = self._examples[:n]
        owner = self._owner[:n]
        counts = np.bincount(owner, minlength=len(self.labels)).astype(np.float32)
        starts = np.searchsorted(owner, np.arange(len(self.labels)))  # owners are grouped
        out: list[list[Candidate]] = []
        without_label: list[list[Candidate]] = []
        for block in np.array_split(rows, max(1, len(rows) // 256 + 1)):
            if not len(block):
                continue
            queries = examples[block]
            prof = queries @ self._profiles.T
            sims = queries @ examples.T
            sims[np.arange(len(block)), block] = -np.inf  # the example itself is left out
            has = counts > 0
            best = np.full((len(block), len(self.labels)), -np.inf, dtype=np.float32)
            best[:, has] = np.maximum.reduceat(sims, starts[has], axis=1)
            own = owner[block]
            left = counts[None, :].repeat(len(block), axis=0)
            left[np.arange(len(block)), own] -= 1
            weight = np.maximum(PROFILE_WEIGHT_FLOOR,
                                PROFILE_WEIGHT_PRIOR / (PROFILE_WEIGHT_PRIOR + left))
            total = np.where(left > 0, weight * prof + (1 - weight) * best, prof)
            top = np.argsort(-total, axis=1, kind="stable")[:, :k]
            total_without = total.copy()
            total_without[np.arange(len(block)), own] = -np.inf
            top_without = np.argsort(-total_without, axis=1, kind="stable")[:, :k]
            for q in range(len(block)):
                out.append([Candidate(int(i), self.labels[int(i)].name, rank, float(total[q, i]))
                            for rank, i in enumerate(top[q])])
                without_label.append([
                    Candidate(int(i), self.labels[int(i)].name, rank, float(total[q, i]))
                    for rank, i in enumerate(top_without[q]) if int(i) != int(own[q])])
        return rows.tolist(), out, without_label

    def search_without_own(self, vectors: np.ndarray, keys: Sequence[str], k: int
                           ) -> tuple[np.ndarray, np.ndarray]:
        """`search` for reviewed items as if each one's own exemplar (`keys`, as given to
        `add_exemplars`) were not in the index; an item without one is searched as it is.

        What the calibrator is fitted on after reviews (app/rac/review_probes.py): an item
        classified before it and the later reviews joined the index meets fewer, weaker
        exemplars than an item classified now, and one searched with its own vector present
        finds itself (similarity 1). Scored by the rule of `search`, exactly over every label
        (no shortlist), so it costs (items x indexed vectors) dot products.
        """
        queries = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        n_labels = len(self.labels)
        k_out = max(1, min(k, n_labels))
        scores = np.full((len(queries), max(1, k)), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), max(1, k)), -1, dtype=np.int64)
        if not len(queries) or not n_labels:
            return scores, ids
        with self._lock:
            alive = np.flatnonzero(self._owner != _DEAD)
            grouped = alive[np.argsort(self._owner[alive], kind="stable")]  # rows by label
            owner = self._owner[grouped]
            examples = self._examples[grouped]
            reviewed = grouped >= self._n_schema_examples
            position = np.full(len(self._owner), -1, dtype=np.int64)
            position[grouped] = np.arange(len(grouped))
            own = np.array([position[self._exemplar_rows[key]] if key in self._exemplar_rows
                            else -1 for key in keys], dtype=np.int64)
            counts, profiles = self._counts, self._profiles
        has = counts > 0
        starts = np.searchsorted(owner, np.arange(n_labels))[has]
        block = max(1, min(_BLOCK_QUERIES, _BLOCK_CELLS // max(1, len(grouped))))
        for start in range(0, len(queries), block):
            q = queries[start:start + block]
            mine = own[start:start + block]
            inside = np.flatnonzero(mine >= 0)
            sims = q @ examples.T
            sims[inside, mine[inside]] = -np.inf  # the item's own exemplar is left out
            best = np.full((len(q), n_labels), -np.inf, dtype=np.float32)
            if len(grouped):
                best[:, has] = np.maximum.reduceat(sims, starts, axis=1)
            left = np.repeat(counts[None, :], len(q), axis=0)
            left[inside, owner[mine[inside]]] -= 1
            weight = np.maximum(PROFILE_WEIGHT_FLOOR,
                                PROFILE_WEIGHT_PRIOR / (PROFILE_WEIGHT_PRIOR + left))
            prof = q @ profiles.T
            with np.errstate(invalid="ignore"):  # -inf * 0 where a label has no example left
                total = np.where(left > 0, weight * prof + (1 - weight) * best, prof)
            duplicate = reviewed[None, :] & (sims >= DUPLICATE_SIMILARITY)
            if duplicate.any():  # as in `search`: a near-copy's label scores at least its sim
                q_of, col = np.nonzero(duplicate)
                dup_best = np.full((len(q), n_labels), -1.0, dtype=np.float32)
                np.maximum.at(dup_best, (q_of, owner[col]), sims[q_of, col])
                total = np.maximum(total, dup_best)
            top = np.argsort(-total, axis=1, kind="stable")[:, :k_out]
            rows = slice(start, start + len(q))
            ids[rows, :k_out] = top
            scores[rows, :k_out] = np.take_along_axis(total, top, axis=1)
        return scores, ids

    def candidates(self, vectors: np.ndarray, k: int) -> list[list[Candidate]]:
        return self.as_candidates(*self.search(vectors, k))

    def as_candidates(self, scores: np.ndarray, ids: np.ndarray) -> list[list[Candidate]]:
        """`search`'s arrays as candidates (padding dropped)."""
        out = []
        for row_scores, row_ids in zip(scores, ids, strict=True):
            out.append([Candidate(int(i), self.labels[int(i)].name, rank, float(s))
                        for rank, (s, i) in enumerate(zip(row_scores, row_ids, strict=True))
                        if i >= 0])
        return out
