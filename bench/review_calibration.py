"""The calibrator fitted on reviews, measured on the dev split of Banking77 train (never test).

`rac eval --reviews` and the service fit the calibrator on reviewed items. Which features of
those items it is fitted on is the question here: the features of the model's decision when the
item was classified (before it and the other reviews joined the index as exemplars: what the
service stored), or the item classified again against the index as it is now, without its own
exemplar (leave-one-out, app/rac/review_probes.py). Each is then applied to the dev
items classified against the index with every review, as new items are.

N reviewed items per label come from the train rows outside the dev split (`bench.common`), a
fixed random sample per seed; the dev split is 2,000 train items. Printed per (N, seed, fit):
the features' means (score, margin, retrieval right) on the fitted rows and on dev, dev ECE,
the cutoff for precision 0.95, the share of dev accepted at it and its measured precision, the
best coverage at 0.95 on dev; plus an oracle fitted on one half of dev and applied to the other.

`--head-features` (with `--scorer`): does the learnt head's own probability add to the
calibrator's features (score, margin, rank)? The cross-fitted reviews (as the service fits the
calibrator) get extra columns from the head that ranked them (the held-out head of their fold;
the full head for dev items): P_head of the top label, its log, the head's log-probability
margin between the trace's top two labels, the head's largest P over all labels and its margin
over the head's second label; and a "split" row that replaces the blended score and margin by
retrieval's raw score and margin plus the head's log P and margin. Each variant is fitted and
applied as the others, with its dev AUC and the dev-half oracle.

    python -m bench.review_calibration --schema schemas/banking77.yaml --train DIR/train.csv
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np

from app.rac import calibration
from app.rac.calibration import features
from app.rac.decision import ClassifyParams
from app.rac.embedder import SentenceTransformerEmbedder
from app.rac.engine import Engine
from app.rac.evaluation import coverage_at_precision, expected_calibration_error
from app.rac.index import Candidate, LabelIndex
from app.rac.prior import fit_prior
from app.rac.review_probes import left_out_traces
from app.rac.scorer import LearntScorer, fit_scorer, with_held_out_heads
from bench.common import dev_split, load_labels, load_rows
from bench.learnt_scorer import embed_cached

RESULTS = Path(__file__).parent / "results"
TARGET = 0.95
SCORE, MARGIN = calibration.FEATURES.index("retrieval_score"), calibration.FEATURES.index("margin")


def reviews_from(pool: list[tuple[str, str]], names: set[str], per_label: int, seed: int
                 ) -> list[tuple[str, str]]:
    """`per_label` rows per label, a fixed random sample (as `rac eval --reviews` takes them)."""
    rows = list(pool)
    random.Random(seed).shuffle(rows)
    taken: dict[str, list[str]] = {}
    for text, gold in rows:
        if gold in names and len(taken.setdefault(gold, [])) < per_label:
            taken[gold].append(text)
    return [(text, gold) for gold, texts in taken.items() for text in texts]


def rows_of(cands: list[list[Candidate]], golds: list[str]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([features([c.trace_step() for c in cs], cs[0].label) for cs in cands])
    return x, np.array([cs[0].label == g for cs, g in zip(cands, golds, strict=True)])


def describe(x: np.ndarray, y: np.ndarray) -> dict:
    return {"n": len(y), "right": round(float(y.mean()), 4),
            "score": round(float(x[:, SCORE].mean()), 4),
            "margin": round(float(x[:, MARGIN].mean()), 4)}


def applied(cal: calibration.Calibrator, x: np.ndarray, y: np.ndarray) -> dict:
    conf = np.array([cal.confidence(r.tolist()) for r in x])
    cutoff = cal.cutoff_for_precision(TARGET)
    accepted = conf >= (cutoff if cutoff is not None else 2.0)
    return {"ece": round(expected_calibration_error(conf.tolist(), y.tolist()) or 0.0, 4),
            "mean_confidence": round(float(conf.mean()), 4),
            "over_confidence": round(float(conf.mean() - y.mean()), 4),
            "cutoff": cutoff, "accepted": round(float(accepted.mean()), 4),
            "precision": round(float(y[accepted].mean()), 4) if accepted.any() else None,
            "best_coverage": round(coverage_at_precision(
                y.tolist(), [True] * len(y), conf.tolist(), TARGET)["coverage"] or 0.0, 4),
            "ece_after_cv": cal.ece_after}


HEAD_COLUMNS = ("head_p_top", "head_logp_top", "head_margin_trace", "head_p_max",
                "head_margin_all")
HEAD_VARIANTS = {"today": (), **{f"+{c}": (c,) for c in HEAD_COLUMNS},
                 "+head_p_top+head_margin_trace": ("head_p_top", "head_margin_trace")}
MARGIN_CAP = 20.0
"""Head log-probability margins are capped (a label the head gives ~0 would dominate a fit)."""


def head_columns(head: LearntScorer, vector: np.ndarray, trace: list, index: LabelIndex
                 ) -> dict[str, float]:
    """The head's view of a decision (`trace`: the candidates it re-ranked, best first)."""
    logp = head.log_proba(vector[None, :])[0]
    on_trace = logp[[index.label_ids[s.label] for s in trace]]
    ordered = np.sort(logp)[::-1]
    others = [s.retrieval_score for s in trace[1:]]
    return {"head_p_top": float(np.exp(on_trace[0])), "head_logp_top": float(on_trace[0]),
            "head_margin_trace": min(MARGIN_CAP, float(on_trace[0] - on_trace[1]))
            if len(on_trace) > 1 else MARGIN_CAP,
            "head_p_max": float(np.exp(ordered[0])),
            "head_margin_all": min(MARGIN_CAP, float(ordered[0] - ordered[1])),
            "retrieval_raw": float(trace[0].retrieval_score),
            "retrieval_margin_raw": float(trace[0].retrieval_score - max(others))
            if others else 1.0}


def with_columns(x: np.ndarray, extra: list[dict[str, float]], names: tuple[str, ...]
                 ) -> np.ndarray:
    return np.hstack([x, np.array([[row[n] for n in names] for row in extra]).reshape(len(x), -1)])


def split_rows(x: np.ndarray, extra: list[dict[str, float]]) -> np.ndarray:
    """The blended score and margin replaced by retrieval's own, the head's beside them."""
    out = x.copy()
    out[:, SCORE] = [row["retrieval_raw"] for row in extra]
    out[:, MARGIN] = [row["retrieval_margin_raw"] for row in extra]
    return with_columns(out, extra, ("head_logp_top", "head_margin_trace"))


def fit_wide(x: np.ndarray, y: np.ndarray) -> calibration.Calibrator:
    """`calibration.fit` on rows with extra columns (the fit itself is width-agnostic)."""
    names = calibration.FEATURES + tuple(f"extra_{i}" for i in range(x.shape[1] - 5))
    with mock.patch.object(calibration, "FEATURES", names):
        return calibration.fit(x.tolist(), y.tolist(), version=1)


def auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score  # a dependency of sentence-transformers

    return round(float(roc_auc_score(y, score)), 4)


def head_report(x_rev: np.ndarray, y_rev: np.ndarray, extra_rev: list[dict[str, float]],
                x_dev: np.ndarray, y_dev: np.ndarray, extra_dev: list[dict[str, float]],
                seed: int) -> dict:
    variants = {name: (with_columns(x_rev, extra_rev, cols), with_columns(x_dev, extra_dev, cols))
                for name, cols in HEAD_VARIANTS.items()}
    variants["split_retrieval_and_head"] = (split_rows(x_rev, extra_rev),
                                            split_rows(x_dev, extra_dev))
    half = np.random.default_rng(seed).permutation(len(y_dev))
    a, b = half[: len(half) // 2], half[len(half) // 2:]
    out: dict = {"single_signal_auc_dev": {
        "blended_score": auc(y_dev, x_dev[:, SCORE]),
        "blended_margin": auc(y_dev, x_dev[:, MARGIN]),
        **{c: auc(y_dev, np.array([row[c] for row in extra_dev]))
           for c in (*HEAD_COLUMNS, "retrieval_raw", "retrieval_margin_raw")}}}
    for name, (xr, xd) in variants.items():
        cal = fit_wide(xr, y_rev)
        out[name] = {**applied(cal, xd, y_dev),
                     "auc_dev": auc(y_dev, np.array([cal.confidence(r.tolist()) for r in xd])),
                     "oracle_dev_half_best_coverage":
                         applied(fit_wide(xd[a], y_dev[a]), xd[b], y_dev[b])["best_coverage"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--per-label", type=int, nargs="+", default=[10])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--scorer", action="store_true",
                        help="with the learnt scorer fitted on the index after the reviews (the "
                             "service's default): it ranks the dev items and the left-out "
                             "reviews (its head has seen them); plus the reviews scored by "
                             "heads cross-fitted in 5 folds")
    parser.add_argument("--unlabelled", action="store_true",
                        help="with --scorer: the scorer also learns from the unreviewed rest of "
                             "the pool (train outside dev), as the service's does")
    parser.add_argument("--report-on", type=Path, default=None, metavar="TEST_CSV",
                        help="apply the calibrators to these rows instead of the dev split (a "
                             "reporting run on test; the reviews still come from train)")
    parser.add_argument("--head-features", action="store_true",
                        help="with --scorer: calibrator variants with the head's own "
                             "probability and margin as extra features (module docstring)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="keep the item embeddings between runs (as bench/learnt_scorer.py)")
    parser.add_argument("--out", type=Path, default=RESULTS / "review_calibration.json")
    args = parser.parse_args()
    labels = load_labels(args.schema)
    names = {x.name for x in labels}
    dev, pool = dev_split(load_rows(args.train), labels)
    if args.report_on is not None:
        dev = [(t, g) for t, g in load_rows(args.report_on) if g in names]
    embedder = SentenceTransformerEmbedder(None)
    dev_vectors = embed_cached(embedder, [t for t, _ in dev], args.cache_dir)
    dev_golds = [g for _, g in dev]
    schema_index = LabelIndex.build(labels, embedder)
    reuse = schema_index.vectors_by_hash()
    prior = fit_prior(schema_index, 5)
    engine = Engine(embedder, None)
    params = ClassifyParams(top_k=5, target_precision=TARGET, strategy="cascade")
    pool_vectors = (embed_cached(embedder, [t for t, _ in pool], args.cache_dir)
                    if args.unlabelled else None)

    def unlabelled_of(reviews: list[tuple[str, str]]) -> np.ndarray | None:
        if pool_vectors is None:
            return None
        reviewed = set(reviews)
        return pool_vectors[[i for i, row in enumerate(pool) if row not in reviewed]]

    report: dict = {"dev_items": len(dev), "target": TARGET, "scorer": args.scorer,
                    "evaluated_on": "test" if args.report_on else "dev split of train",
                    "unlabelled": args.unlabelled, "runs": []}
    for per_label in args.per_label:
        for seed in args.seeds:
            reviews = reviews_from(pool, names, per_label, seed)
            golds = [g for _, g in reviews]
            vectors = embed_cached(embedder, [t for t, _ in reviews], args.cache_dir)
            keys = [f"review-{i}" for i in range(len(reviews))]
            index = LabelIndex.build(labels, embedder, reuse=reuse)
            then = engine.classify([t for t, _ in reviews], index, params, vectors=vectors,
                                   calibrator=prior)
            x_then = np.array([features(d.trace, d.label) for d in then])
            y_then = np.array([d.label == g for d, g in zip(then, golds, strict=True)])
            index.add_exemplars(keys, vectors, golds)
            started = time.perf_counter()
            unlabelled = unlabelled_of(reviews)
            scorer = fit_scorer(index, version=1, unlabelled=unlabelled) if args.scorer else None
            fit_seconds = time.perf_counter() - started
            started = time.perf_counter()
            scorer = with_held_out_heads(scorer, index, unlabelled=unlabelled) if scorer \
                else None
            held_out_seconds = time.perf_counter() - started
            # the full head on the reviews it was trained on (what the service no longer does)
            traces = left_out_traces(index, keys, vectors, 5,
                                     replace(scorer, held_out=()) if scorer else None)
            x_loo = np.array([features(t, t[0].label) for t in traces])
            y_loo = np.array([t[0].label == g for t, g in zip(traces, golds, strict=True)])
            # the model's own label and outcome, its evidence (score, margin, rank) as now
            x_ref = np.array([features(t, d.label) if any(s.label == d.label for s in t)
                              else old for t, d, old in zip(traces, then, x_then, strict=True)])
            dev_cands = (scorer.rerank(index, dev_vectors, 5) if scorer is not None
                         else index.candidates(dev_vectors, 5))
            x_dev, y_dev = rows_of(dev_cands, dev_golds)
            variants = {"when_classified": (x_then, y_then), "left_out_now": (x_loo, y_loo),
                        "model_label_evidence_now": (x_ref, y_then)}
            if scorer is not None:  # as the service fits it: each review by its held-out head
                crossed = left_out_traces(index, keys, vectors, 5, scorer)
                variants["left_out_cross_fitted"] = (
                    np.array([features(t, t[0].label) for t in crossed]),
                    np.array([t[0].label == g for t, g in zip(crossed, golds, strict=True)]))
            run: dict = {"per_label": per_label, "seed": seed,
                         "scorer_fit_seconds": round(fit_seconds, 1) if scorer else None,
                         "held_out_heads_seconds": round(held_out_seconds, 1) if scorer
                         else None,
                         "unlabelled": scorer.n_unlabelled if scorer else 0,
                         "features": {**{f"reviews_{k}": describe(x, y)
                                         for k, (x, y) in variants.items()},
                                      "dev": describe(x_dev, y_dev)}}
            for name, (x, y) in variants.items():
                run[name] = applied(calibration.fit(x.tolist(), y.tolist(), version=1), x_dev,
                                    y_dev)
            half = np.random.default_rng(seed).permutation(len(y_dev))
            a, b = half[: len(half) // 2], half[len(half) // 2:]
            run["oracle_dev_half"] = applied(calibration.fit(
                x_dev[a].tolist(), y_dev[a].tolist(), version=1), x_dev[b], y_dev[b])
            if args.head_features and scorer is not None:
                x_rev, y_rev = variants["left_out_cross_fitted"]
                run["head_features"] = head_report(
                    x_rev, y_rev,
                    [head_columns(scorer.without(k) or scorer, v, t, index)
                     for k, v, t in zip(keys, vectors, crossed, strict=True)],
                    x_dev, y_dev,
                    [head_columns(scorer, v, [c.trace_step() for c in cs], index)
                     for v, cs in zip(dev_vectors, dev_cands, strict=True)], seed)
            report["runs"].append(run)
            print(json.dumps(run), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
