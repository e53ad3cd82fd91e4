"""Does a lexical head add to the learnt scorer? Dev split of Banking77 train only.

The learnt scorer (app/rac/scorer.py) is a linear head on frozen MiniLM vectors. A TF-IDF
logistic regression (word 1-2-grams or character 2-5-grams) sees what the embedding smooths
away: exact words and spellings. It is fitted on the texts the scorer is fitted on (each label's
name, description and examples, the reviewed items, and the unreviewed items with the labels
propagated from the reviews, weighted 0.3 as in the scorer), and its log-probability is added to
the scorer's blended ranking score with weight b:

    score = retrieval score + BLEND * log P_head(label) + b * log P_lexical(label)

Reported per count of reviewed items per label: dev accuracy of the scorer as the service fits
it, of the lexical head alone, and of the sum over a grid of C and b; the lexical fit's seconds.

    python bench/lexical_head.py --schema schemas/banking77.yaml --train train.csv \
        --out bench/results/lexical_head.json [--per-label 10 20 all] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.rac.propagation import propagate  # noqa: E402
from app.rac.scorer import BLEND, UNLABELLED_WEIGHT, fit_scorer  # noqa: E402
from bench.learnt_scorer import Setup, _per_label, _reviewed  # noqa: E402

SHORTLIST = 20
GRID_C = (3.0, 10.0, 30.0)
GRID_B = (0.02, 0.05, 0.1, 0.2)


def vectorizers() -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer  # sentence-transformers' dep

    return {"word 1-2": TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            "char 2-5": TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5),
                                        sublinear_tf=True)}


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=Path, required=True)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--per-label", nargs="+", default=["10", "20", "all"])
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.test = args.train  # Setup reads a test file; dev_only never embeds it
    s = Setup(args, dev_only=True)
    names = [x.name for x in s.labels]
    label_id = {n: i for i, n in enumerate(names)}
    schema_texts, schema_ids = [], []
    for i, label in enumerate(s.labels):
        for text in (label.name.replace("_", " "), label.description, *label.examples):
            if text and text.strip():
                schema_texts.append(text)
                schema_ids.append(i)
    dev_texts = [t for t, _ in s.dev]
    dev_ids = np.array([label_id[g] for _, g in s.dev])
    report: dict = {"dev_items": len(dev_texts), "load_average": os.getloadavg(), "rows": {}}
    for value in args.per_label:
        reviewed = _reviewed(s, _per_label(value))
        index = s.index_with(reviewed)
        keep = np.ones(len(s.pool), dtype=bool)
        keep[reviewed] = False
        pool_rows = np.nonzero(keep)[0]
        scorer = fit_scorer(index, version=1,
                            unlabelled=s.pool_vectors[pool_rows] if len(pool_rows) else None)
        scores, ids = index.search(s.dev_vectors, SHORTLIST)
        valid = ids >= 0
        safe = np.where(valid, ids, 0)
        base = np.where(valid, scores + BLEND * np.take_along_axis(
            scorer.log_proba(s.dev_vectors), safe, axis=1), -np.inf)

        def accuracy(ranking: np.ndarray, ids: np.ndarray = ids) -> float:
            top = np.take_along_axis(ids, ranking.argmax(axis=1)[:, None], axis=1)[:, 0]
            return round(float((top == dev_ids).mean()), 4)

        row: dict = {"reviews": len(reviewed), "scorer": accuracy(base)}
        texts = schema_texts + [s.pool[i][0] for i in reviewed]
        targets = schema_ids + [label_id[s.pool[i][1]] for i in reviewed]
        weights = [1.0] * len(texts)
        if len(pool_rows):  # the scorer's own propagated labels for the unreviewed items
            vectors, owners, _ = index.training_points(())
            pseudo, _ = propagate(vectors, owners, s.pool_vectors[pool_rows], len(names))
            for i, p in zip(pool_rows, pseudo, strict=True):
                if p >= 0:
                    texts.append(s.pool[i][0])
                    targets.append(int(p))
                    weights.append(UNLABELLED_WEIGHT)
        for kind, vectorizer in vectorizers().items():
            started = time.perf_counter()
            x = vectorizer.fit_transform(texts)
            x_dev = vectorizer.transform(dev_texts)
            for c in GRID_C:
                model = LogisticRegression(C=c, max_iter=300).fit(
                    x, np.array(targets), sample_weight=np.array(weights))
                logp = np.full((len(dev_texts), len(names)), -30.0)
                logp[:, model.classes_] = model.predict_log_proba(x_dev)
                row[f"{kind} C={c:g} alone"] = round(float((logp.argmax(1) == dev_ids).mean()), 4)
                lexical = np.take_along_axis(logp, safe, axis=1)
                for b in GRID_B:
                    row[f"{kind} C={c:g} b={b:g}"] = accuracy(base + b * lexical)
            row[f"{kind} seconds"] = round(time.perf_counter() - started, 1)
        best = max((v, k) for k, v in row.items() if " b=" in k)
        row["best"] = {"cell": best[1], "accuracy": best[0],
                       "gain_over_scorer": round(best[0] - row["scorer"], 4)}
        report["rows"][value] = row
        print(value, json.dumps(row["best"]), "scorer", row["scorer"], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
