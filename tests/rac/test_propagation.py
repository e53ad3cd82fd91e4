"""Label propagation on the bundled embedder: labels reach the unreviewed items near the reviewed
ones, and the learnt scorer learns from them."""

from __future__ import annotations

import numpy as np

from app.rac.index import LabelIndex
from app.rac.propagation import propagate
from app.rac.scorer import fit_scorer
from tests.rac.test_scorer import LABELS, REVIEWED_LOST, SIMILAR, embedder

# Unreviewed items: more of what the one review calls lost_card, and some refunds.
POOL_LOST = ["The card you sent me seems to have got lost in the mail",
             "The postman lost my new card, it never came",
             "My replacement card disappeared somewhere in the post",
             "My new card went missing in the mail",
             "The card you posted never reached me"]
POOL_REFUND = ["I would like my money back for this order",
               "Can I get a refund for the shoes I bought?",
               "Please return the money for the cancelled purchase"]
HELD_OUT_LOST = [SIMILAR, "The card you mailed me never turned up",
                 "Your letter with my card got lost"]


def _index_with_one_review():  # type: ignore[no-untyped-def]
    emb = embedder()
    index = LabelIndex.build(LABELS, emb)
    index.add_exemplars(["r0"], emb.embed(REVIEWED_LOST[:1]), ["lost_card"])
    return emb, index


def test_labels_spread_from_the_reviews_to_their_unreviewed_neighbours():
    emb, index = _index_with_one_review()
    vectors, owners, _ = index.training_points()
    pool = emb.embed(POOL_LOST + POOL_REFUND)
    isolated = np.zeros((1, emb.dim), dtype=np.float32)  # similar to nothing: no label reaches it
    labels, share = propagate(vectors, owners, np.concatenate([pool, isolated]), len(LABELS))
    names = [LABELS[i].name if i >= 0 else None for i in labels]
    assert names == ["lost_card"] * len(POOL_LOST) + ["refund"] * len(POOL_REFUND) + [None]
    assert np.all(share[:-1] > 0.5) and share[-1] == 0.0


def test_the_unreviewed_items_sharpen_the_head_and_never_act_without_a_review():
    emb, index = _index_with_one_review()
    pool = emb.embed(POOL_LOST + POOL_REFUND)
    supervised = fit_scorer(index, version=1)
    semi = fit_scorer(index, version=1, unlabelled=pool)
    assert supervised.n_unlabelled == 0 and semi.n_unlabelled == len(pool)
    held_out = emb.embed(HELD_OUT_LOST)
    lost = index.label_ids["lost_card"]
    # every held-out text of the reviewed kind: the head trusts its label more than before
    assert np.all(semi.log_proba(held_out)[:, lost] > supervised.log_proba(held_out)[:, lost])
    # schema-only behaviour is unchanged: without a review the scorer stays the identity
    schema_only = LabelIndex.build(LABELS, emb)
    assert fit_scorer(schema_only, version=1, unlabelled=pool).is_identity
