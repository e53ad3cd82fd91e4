"""The label index: scoring rule, exemplars, persistence, re-embedding only changed labels."""

from __future__ import annotations

import numpy as np
import pytest

from app.rac.index import LabelIndex
from app.rac.index_store import IndexStore
from app.rac.prompts import LabelInfo
from tests.rac.fakes import KeywordEmbedder

VOCAB = ["card", "cash", "fee", "refund", "lost", "atm"]
EMB = KeywordEmbedder(VOCAB)


class CountingEmbedder(KeywordEmbedder):
    def __init__(self) -> None:
        super().__init__(VOCAB)
        self.embedded: list[str] = []

    def embed(self, texts):
        self.embedded += list(texts)
        return super().embed(texts)


def labels(desc_fee: str = "fee") -> list[LabelInfo]:
    return [LabelInfo("card", "card", ("lost card",)), LabelInfo("cash", "cash atm"),
            LabelInfo("fee", desc_fee, ("fee fee",))]


def test_search_pads_when_fewer_labels_than_k():
    scores, ids = LabelIndex.build(labels(), EMB).search(EMB.embed(["card"]), 5)
    assert ids.shape == (1, 5) and list(ids[0, 3:]) == [-1, -1]
    assert np.isneginf(scores[0, 3:]).all()


def test_exemplar_changes_ranking_without_rebuild_and_rereview_replaces_it():
    index = LabelIndex.build(labels(), EMB)
    query = EMB.embed(["lost atm"])
    before = index.candidates(query, 3)[0]
    assert before[0].label == "cash"
    index.add_exemplars(["item-1"], EMB.embed(["lost atm"]), ["fee"], watermark=7)
    assert index.candidates(query, 3)[0][0].label == "fee"
    assert index.exemplar_watermark == 7 and index.exemplar_count == 1
    # the same item reviewed again with another label replaces its exemplar
    index.add_exemplars(["item-1"], EMB.embed(["lost atm"]), ["card"])
    top = index.candidates(query, 3)[0]
    assert top[0].label == "card" and index.exemplar_count == 1
    # a label not in this schema version is skipped
    assert index.add_exemplars(["item-2"], EMB.embed(["fee"]), ["gone"]) == 0


def test_save_load_round_trip(tmp_path):
    index = LabelIndex.build(labels(), EMB)
    index.save(tmp_path / "ix")
    loaded = LabelIndex.load(tmp_path / "ix")
    query = EMB.embed(["card fee", "atm"])
    for a, b in zip(index.search(query, 3), loaded.search(query, 3), strict=True):
        np.testing.assert_allclose(a, b)


def test_store_builds_once_and_reembeds_only_changed_labels(tmp_path):
    embedder = CountingEmbedder()
    store = IndexStore(tmp_path, embedder)
    first = store.get("schema-1", "v1hash", labels)
    assert len(embedder.embedded) == 5  # 3 profiles + 2 examples
    assert store.get("schema-1", "v1hash", labels) is first  # in memory
    fresh = IndexStore(tmp_path, embedder)
    fresh.get("schema-1", "v1hash", lambda: pytest.fail("must load from disk, not rebuild"))
    assert len(embedder.embedded) == 5
    changed = fresh.get("schema-1", "v2hash", lambda: labels(desc_fee="fee refund"))
    assert embedder.embedded[5:] == ["fee: fee refund"]  # only the changed profile
    assert changed.labels[2].description == "fee refund"


def test_on_load_runs_once_per_index_in_memory(tmp_path):
    seen = []
    store = IndexStore(tmp_path, EMB)
    for _ in range(3):
        store.get("s", "k", labels, on_load=seen.append)
    assert len(seen) == 1


def test_a_reviewed_duplicate_wins_even_against_a_strong_description():
    index = LabelIndex.build(labels(), EMB)
    query = EMB.embed(["card card card lost"])
    assert index.candidates(query, 3)[0][0].label == "card"
    index.add_exemplars(["item-9"], query, ["cash"])  # a person said: this exact text is cash
    top = index.candidates(query, 3)[0][0]
    assert top.label == "cash" and top.score == pytest.approx(1.0, abs=1e-5)


def _exact_scores(index: LabelIndex, query: np.ndarray) -> np.ndarray:
    """The documented rule, scored for every label from the float32 vectors, with no index."""
    from app.rac.index import DUPLICATE_SIMILARITY, PROFILE_WEIGHT_FLOOR, PROFILE_WEIGHT_PRIOR

    scores = np.empty(len(index.labels), dtype=np.float64)
    for label_id in range(len(index.labels)):
        rows = index._rows_by_label[label_id]
        profile = float(index._profiles[label_id] @ query)
        if not rows:
            scores[label_id] = profile
            continue
        sims = index._examples[rows] @ query
        w = max(PROFILE_WEIGHT_FLOOR, PROFILE_WEIGHT_PRIOR / (PROFILE_WEIGHT_PRIOR + len(rows)))
        score = w * profile + (1 - w) * float(sims.max())
        reviewed = [s for r, s in zip(rows, sims, strict=True) if r >= index._n_schema_examples]
        if reviewed and max(reviewed) >= DUPLICATE_SIMILARITY:
            score = max(score, float(max(reviewed)))
        scores[label_id] = score
    return scores


def test_search_matches_scoring_every_label_exactly():
    # Many labels with 0-4 examples and reviewed exemplars (one an exact copy of a query): the
    # float16 shortlist must not change which labels come first, nor their exact scores.
    rng = np.random.default_rng(1)
    dim, n_labels = 64, 2000

    def unit(n: int) -> np.ndarray:
        x = rng.standard_normal((n, dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    per_label = rng.integers(0, 5, n_labels)
    owner = np.repeat(np.arange(n_labels), per_label)
    labels = [LabelInfo(f"l{i}", "d", ("e",) * int(k)) for i, k in enumerate(per_label)]
    index = LabelIndex(labels, "random", unit(n_labels), [str(i) for i in range(n_labels)],
                       unit(len(owner)), owner, [str(i) for i in range(len(owner))])
    queries = unit(200)
    exemplars = np.concatenate([unit(300), queries[:1]])
    index.add_exemplars([f"r{i}" for i in range(len(exemplars))], exemplars,
                        [f"l{i}" for i in rng.integers(0, n_labels, len(exemplars))])
    scores, ids = index.search(queries, 5)
    for q, query in enumerate(queries):
        exact = _exact_scores(index, query)
        best = np.argsort(-exact, kind="stable")[:5]
        assert list(ids[q]) == list(best), q
        np.testing.assert_allclose(scores[q], exact[best], atol=1e-5)
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)  # the reviewed copy of query 0 wins


def _rule_over_every_label(index: LabelIndex, queries: np.ndarray, labels: list[LabelInfo],
                           examples: list[tuple[np.ndarray, int, bool]]) -> np.ndarray:
    """The scoring rule of app/rac/index.py written out per query and label, with no
    shortlist: (queries x labels) scores."""
    out = np.zeros((len(queries), len(labels)), dtype=np.float64)
    for q, query in enumerate(queries):
        for i in range(len(labels)):
            own = [(float(v @ query), reviewed) for v, owner, reviewed in examples if owner == i]
            prof = float(index._profiles[i] @ query)
            if not own:
                out[q, i] = prof
                continue
            w = max(0.2, 4.0 / (4.0 + len(own)))
            out[q, i] = w * prof + (1 - w) * max(s for s, _ in own)
            dup = [s for s, reviewed in own if reviewed and s >= 0.97]
            if dup:
                out[q, i] = max(out[q, i], max(dup))
    return out


@pytest.mark.parametrize("dense_ratio", [16, 0], ids=["matrix-product", "gathered"])
def test_search_scores_exactly_by_the_rule_with_exemplars_rereviews_and_duplicates(
        dense_ratio, monkeypatch):
    # both ways of computing the shortlisted similarities (small and large indexes)
    monkeypatch.setattr("app.rac.index._DENSE_RATIO", dense_ratio)
    rng = np.random.default_rng(0)
    dim, n_labels = 16, 24  # fewer labels than the profile shortlist: every label is scored

    def unit(n: int) -> np.ndarray:
        v = rng.normal(size=(n, dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    labels = [LabelInfo(f"l{i}", f"label {i}", ()) for i in range(n_labels)]
    profiles = unit(n_labels)
    schema_examples = unit(30)
    owner = np.sort(rng.integers(0, n_labels - 4, size=30))  # the last 4 have no examples
    index = LabelIndex(labels, "m", profiles, [str(i) for i in range(n_labels)],
                       schema_examples, owner, [f"e{i}" for i in range(30)])
    reviewed = unit(40)
    reviewed_owner = rng.integers(0, n_labels, size=40)
    index.add_exemplars([f"r{i}" for i in range(40)], reviewed,
                        [f"l{i}" for i in reviewed_owner])
    # re-reviews: the first 10 items get another label (their old exemplar rows die)
    relabel = (reviewed_owner[:10] + 1) % n_labels
    index.add_exemplars([f"r{i}" for i in range(10)], reviewed[:10], [f"l{i}" for i in relabel])
    final_owner = np.concatenate([relabel, reviewed_owner[10:]])
    examples = ([(v, int(o), False) for v, o in zip(schema_examples, owner, strict=True)]
                + [(v, int(o), True) for v, o in zip(reviewed, final_owner, strict=True)])
    # queries: random ones, and near-copies of reviewed items (the duplicate rule)
    near = reviewed[:6] + 0.01 * unit(6)
    queries = np.concatenate([unit(50), near / np.linalg.norm(near, axis=1, keepdims=True)])
    expected = _rule_over_every_label(index, queries, labels, examples)
    for k in (1, 5, 20):
        scores, ids = index.search(queries, k)
        assert ids.shape == (len(queries), k) and (ids >= 0).all()
        np.testing.assert_allclose(scores, np.sort(expected, axis=1)[:, ::-1][:, :k],
                                   atol=1e-5)
        np.testing.assert_allclose(np.take_along_axis(expected, ids, axis=1), scores, atol=1e-5)
    # a near-copy of a re-reviewed item is its new label, whatever the other labels score
    top = index.search(queries[50:], 1)[1][:, 0]
    assert list(top) == list(final_owner[:6])


def test_search_without_own_is_search_on_the_index_without_that_reviewed_item():
    """What the calibrator is fitted on after reviews (app/rac/review_probes.py): each reviewed
    item scored exactly as the same index without its exemplar would score it."""
    rng = np.random.default_rng(1)
    dim, n_labels = 16, 12

    def unit(n: int) -> np.ndarray:
        v = rng.normal(size=(n, dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    labels = [LabelInfo(f"l{i}", f"label {i}", ()) for i in range(n_labels)]
    profiles, schema_examples = unit(n_labels), unit(20)
    owner = np.sort(rng.integers(0, n_labels - 2, size=20))  # the last 2 have no examples

    def fresh() -> LabelIndex:
        return LabelIndex(labels, "m", profiles, [str(i) for i in range(n_labels)],
                          schema_examples, owner, [f"e{i}" for i in range(20)])

    reviewed = unit(30)
    reviewed[5] = reviewed[4]  # two reviews of the same text: the other copy is a duplicate
    golds = [f"l{i}" for i in rng.integers(0, n_labels, size=30)]
    golds[29] = "l11"  # the only example of its label: without it the label has its profile
    keys = [f"r{i}" for i in range(30)]
    index = fresh()
    index.add_exemplars(keys, reviewed, ["l0"] * 30)
    index.add_exemplars(keys, reviewed, golds)  # re-reviewed: the first rows are dead
    queries = np.concatenate([reviewed, unit(3)])
    for k in (1, 5):
        scores, ids = index.search_without_own(queries, keys + ["new-a", "new-b", "new-c"], k)
        for i in range(len(queries)):
            without = fresh()
            others = [j for j in range(30) if j != i]
            without.add_exemplars([keys[j] for j in others], reviewed[others],
                                  [golds[j] for j in others])
            want_scores, want_ids = without.search(queries[i:i + 1], k)
            assert list(ids[i]) == list(want_ids[0]), i
            np.testing.assert_allclose(scores[i], want_scores[0], atol=1e-5)
    # the duplicate rule holds without the item itself: r4's copy r5 makes r5's label win
    assert index.labels[int(index.search_without_own(reviewed[4:5], ["r4"], 1)[1][0, 0])
                        ].name == golds[5]
    found, vectors = index.exemplar_vectors(["r3", "gone", "r7"])
    assert found == [0, 2]
    np.testing.assert_allclose(vectors, reviewed[[3, 7]])
