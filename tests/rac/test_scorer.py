"""The learnt scorer on the bundled embedder: identity without reviews, learns from them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from app.config import EmbedderSettings
from app.rac.decision import ClassifyParams
from app.rac.engine import Engine
from app.rac.index import LabelIndex
from app.rac.prompts import LabelInfo
from app.rac.scorer import CROSS_FOLDS, LearntScorer, fit_scorer, fold_of, with_held_out_heads
from app.runtime import make_embedder

RETRIEVAL = ClassifyParams(top_k=3, strategy="retrieval")
LABELS = [
    LabelInfo("card_arrival", "The customer is waiting for a new card to arrive.",
              ("When will my card arrive?",)),
    LabelInfo("lost_card", "The customer lost their card or it was stolen.",
              ("I lost my card",)),
    LabelInfo("refund", "The customer wants money back for a purchase.",
              ("I want a refund",)),
]
# Texts the descriptions place under card_arrival, but that this team labels lost_card.
REVIEWED_LOST = ["My card never came in the post, it must have gone missing",
                 "The card you sent me seems to have got lost in the mail",
                 "The postman lost my new card, it never came",
                 "My replacement card disappeared somewhere in the post"]
SIMILAR = "My new card got lost in the post and never came"


def embedder():  # type: ignore[no-untyped-def]
    return make_embedder(EmbedderSettings())


def test_without_reviews_the_scorer_is_the_identity_and_ranking_is_unchanged():
    index = LabelIndex.build(LABELS, embedder())
    scorer = fit_scorer(index, version=3)
    assert scorer.is_identity and scorer.version == 3 and not scorer.applies_to(index)
    engine = Engine(embedder(), None)
    plain = engine.classify([SIMILAR, "refund please"], index, RETRIEVAL)
    with_scorer = engine.classify([SIMILAR, "refund please"], index, RETRIEVAL, scorer=scorer)
    assert [d.trace for d in plain] == [d.trace for d in with_scorer]
    assert all(d.scorer_version is None for d in with_scorer)


def test_reviews_teach_the_head_and_the_engine_ranks_with_it():
    emb = embedder()
    index = LabelIndex.build(LABELS, emb)
    index.add_exemplars([f"r{i}" for i in range(len(REVIEWED_LOST))], emb.embed(REVIEWED_LOST),
                        ["lost_card"] * len(REVIEWED_LOST))
    scorer = fit_scorer(index, version=1)
    assert scorer.applies_to(index) and scorer.n_reviews == 4 and scorer.fit_seconds > 0
    vector = emb.embed([SIMILAR])
    logp = scorer.log_proba(vector)[0]
    assert logp.argmax() == index.label_ids["lost_card"]
    engine = Engine(emb, None)
    plain = engine.classify([SIMILAR], index, RETRIEVAL, vectors=vector)[0]
    learnt = engine.classify([SIMILAR], index, RETRIEVAL, vectors=vector, scorer=scorer)[0]
    assert learnt.label == "lost_card" and learnt.scorer_version == 1
    # the trace keeps the index's raw score beside the blended one the ranking used; the head
    # only adds log-probabilities (<= 0), so each blended score is below the raw one
    plain_scores = {s.label: s.retrieval_score for s in plain.trace}
    assert all(s.score == s.retrieval_score for s in plain.trace)
    for step in learnt.trace:
        assert abs(step.retrieval_score - plain_scores[step.label]) < 1e-6
        assert step.score is not None and step.score < step.retrieval_score
    assert [s.rank for s in learnt.trace] == list(range(len(learnt.trace)))
    assert [s.score for s in learnt.trace] == sorted((s.score for s in learnt.trace),
                                                     reverse=True)


def test_a_stored_scorer_scores_the_same_with_its_held_out_heads():
    emb = embedder()
    index = LabelIndex.build(LABELS, emb)
    keys = [f"r{i}" for i in range(len(REVIEWED_LOST))]
    index.add_exemplars(keys, emb.embed(REVIEWED_LOST), ["lost_card"] * len(keys))
    plain = fit_scorer(index, version=2)
    assert plain.held_out == () and plain.without("r0") is None
    scorer = with_held_out_heads(plain, index)
    back = LearntScorer.from_bytes(scorer.to_bytes(), version=2, blend=scorer.blend,
                                   n_reviews=scorer.n_reviews)
    vectors = emb.embed([SIMILAR, "refund"])
    assert back.label_names == scorer.label_names and back.held_out == ()
    assert np.allclose(back.log_proba(vectors), scorer.log_proba(vectors))
    back = back.with_held_out_from_bytes(scorer.held_out_to_bytes())
    assert len(back.held_out) == len(scorer.held_out) == CROSS_FOLDS
    for key in keys:
        stored, fitted = back.without(key), scorer.without(key)
        assert stored is not None and fitted is not None
        assert stored.is_identity == fitted.is_identity
        if not fitted.is_identity:
            assert np.allclose(stored.log_proba(vectors), fitted.log_proba(vectors))


def test_each_held_out_head_never_saw_the_reviews_of_its_fold():
    """A held-out head is the fit of the index without its fold's reviews, so the calibrator can
    score a reviewed item as a new item."""
    emb = embedder()
    index = LabelIndex.build(LABELS, emb)
    keys = [f"review-{i}" for i in range(len(REVIEWED_LOST))]
    vectors = emb.embed(REVIEWED_LOST)
    index.add_exemplars(keys, vectors, ["lost_card"] * len(keys))
    scorer = with_held_out_heads(fit_scorer(index, version=1), index)
    lost = index.label_ids["lost_card"]
    for key, vector in zip(keys, vectors, strict=True):
        head = scorer.without(key)
        assert head is not None
        fold = fold_of(key)
        others = [k for k in keys if fold_of(k) != fold]
        if not others:  # every review in this fold: nothing reviewed is left to learn from
            assert head.is_identity
            continue
        alone = LabelIndex.build(LABELS, emb)
        alone.add_exemplars(others, emb.embed([REVIEWED_LOST[keys.index(k)] for k in others]),
                            ["lost_card"] * len(others))
        want = fit_scorer(alone, version=1)
        assert np.allclose(head.log_proba(vector[None, :]), want.log_proba(vector[None, :]),
                           atol=0.05)
        # the full head was trained on this review: surer of its label than the held-out head
        assert scorer.log_proba(vector[None, :])[0, lost] > head.log_proba(vector[None, :])[0, lost]


def test_a_scorer_of_other_labels_is_not_used_and_a_refit_covers_the_new_ones():
    emb = embedder()
    index = LabelIndex.build(LABELS, emb)
    index.add_exemplars(["a"], emb.embed(REVIEWED_LOST[:1]), ["lost_card"])
    old = fit_scorer(index, version=1)
    changed = [*LABELS, LabelInfo("fees", "The customer asks about a fee.", ())]
    new_index = LabelIndex.build(changed, emb)
    new_index.add_exemplars(["a"], emb.embed(REVIEWED_LOST[:1]), ["lost_card"])
    assert not old.applies_to(new_index)
    decision = Engine(emb, None).classify(["why was I charged a fee"], new_index, RETRIEVAL,
                                          scorer=old)[0]
    assert decision.scorer_version is None
    fresh = fit_scorer(new_index, version=2)
    assert fresh.applies_to(new_index) and fresh.weights.shape == (4, emb.dim)


def test_a_scorer_fitted_on_another_embedders_vectors_is_not_used():
    """Switching the service's embedder (MiniLM's 384 dimensions to MPNet's 768) leaves scorers
    fitted on the old vectors in the database: the engine must rank without them, not fail."""
    emb = embedder()
    index = LabelIndex.build(LABELS, emb)
    index.add_exemplars(["a"], emb.embed(REVIEWED_LOST[:1]), ["lost_card"])
    scorer = fit_scorer(index, version=1)
    wider = replace(scorer, weights=np.zeros((len(LABELS), 2 * emb.dim), dtype=np.float32))
    assert scorer.applies_to(index) and not wider.applies_to(index)
    decision = Engine(emb, None).classify([SIMILAR], index, RETRIEVAL, scorer=wider)[0]
    assert decision.scorer_version is None and decision.label is not None
