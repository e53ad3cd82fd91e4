"""Which scoring rule should the label index use? Measured on the 2,000-item dev split of train.

A label's score for an item mixes the similarity to its profile (name + description) and the best
similarity to one of its examples (the schema's examples plus reviewed items):

    score = w * sim(item, profile) + (1 - w) * max sim(item, example)

Compared, for 0/1/2/5/10/20/all reviewed items per label (drawn from the rest of train, averaged
over a few draws for the small counts): profile only (w = 1), fixed weights w, and the rule
w = prior / (prior + n_examples) for a few priors. The shipped rule (prior 4) is also run through
the real `LabelIndex` (FAISS shortlist and all), to check the index scores what was measured.

    python bench/retrieval_rule.py --schema schemas/banking77.yaml --data train.csv \
        --out bench/results/retrieval_rule.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.rac.embedder import SentenceTransformerEmbedder  # noqa: E402
from app.rac.index import PROFILE_WEIGHT_PRIOR, LabelIndex, profile_text  # noqa: E402
from bench.common import dev_split, load_labels, load_rows  # noqa: E402

REVIEWED = (0, 1, 2, 5, 10, 20, "all")
FIXED_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
PRIORS = (1.0, 2.0, 4.0, 8.0, 16.0)
FLOORS = (0.1, 0.2)  # w = max(floor, prior / (prior + n)): keep some weight on the description
DRAWS = 3  # random draws of reviewed items for the small counts


def top_hits(scores: np.ndarray, gold: np.ndarray) -> tuple[float, float]:
    """(top-1 accuracy, recall@5) of a (items, labels) score matrix."""
    order = np.argsort(-scores, axis=1)[:, :5]
    top1 = float((order[:, 0] == gold).mean())
    at5 = float((order == gold[:, None]).any(axis=1).mean())
    return top1, at5


def best_example_sims(item_vecs: np.ndarray, ex_vecs: np.ndarray, owner: np.ndarray,
                      n_labels: int) -> np.ndarray:
    """(items, labels): max similarity to each label's examples (-inf for a label with none)."""
    sims = item_vecs @ ex_vecs.T
    best = np.full((len(item_vecs), n_labels), -np.inf, dtype=np.float32)
    for label in range(n_labels):
        cols = np.flatnonzero(owner == label)
        if len(cols):
            best[:, label] = sims[:, cols].max(axis=1)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="train.csv")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    labels = load_labels(args.schema)
    names = [x.name for x in labels]
    label_id = {n: i for i, n in enumerate(names)}
    dev, pool = dev_split(load_rows(args.data), labels)
    pool = [(t, g) for t, g in pool if g in label_id]
    embedder = SentenceTransformerEmbedder()
    started = time.perf_counter()
    dev_vecs = embedder.embed([t for t, _ in dev])
    pool_vecs = embedder.embed([t for t, _ in pool])
    profiles = embedder.embed([profile_text(x) for x in labels])
    schema_ex = [(e, i) for i, x in enumerate(labels) for e in x.examples]
    schema_vecs = embedder.embed([e for e, _ in schema_ex])
    embed_seconds = time.perf_counter() - started
    gold = np.array([label_id[g] for _, g in dev])
    pool_owner = np.array([label_id[g] for _, g in pool])
    schema_owner = np.array([i for _, i in schema_ex])
    prof_sims = dev_vecs @ profiles.T
    label_vectors = LabelIndex.build(labels, embedder).vectors_by_hash()  # embed labels once
    by_label = [np.flatnonzero(pool_owner == i) for i in range(len(labels))]

    results: dict = {"dev_items": len(dev), "pool_items": len(pool), "labels": len(labels),
                     "schema_examples_per_label": len(schema_ex) / len(labels),
                     "embedder": embedder.model_id, "embed_seconds": embed_seconds,
                     "profile_only": dict(zip(("top1", "recall5"), top_hits(prof_sims, gold),
                                              strict=True)),
                     "by_reviewed": {}}
    print(f"profile only: top-1 {results['profile_only']['top1']:.3f}  "
          f"recall@5 {results['profile_only']['recall5']:.3f}")
    print(f"{'reviewed':>8s} {'best fixed w':>14s} {'rule p=4':>9s} {'index p=4':>9s}  "
          + "  ".join(f"p={p:g}" for p in PRIORS) + "  " + "  ".join(
              f"p=4,floor={f:g}" for f in FLOORS))
    for n in REVIEWED:
        draws = 1 if n in (0, "all") else DRAWS
        rows: dict[str, list[float]] = {}
        for draw in range(draws):
            rng = random.Random(1000 * draw + (0 if n == "all" else int(n)))
            if n == "all":
                chosen = np.arange(len(pool))
            else:
                chosen = np.array([i for ids in by_label for i in
                                   rng.sample(list(ids), min(int(n), len(ids)))], dtype=np.int64)
            ex_vecs = np.concatenate([schema_vecs, pool_vecs[chosen]])
            owner = np.concatenate([schema_owner, pool_owner[chosen]])
            best = best_example_sims(dev_vecs, ex_vecs, owner, len(labels))
            counts = np.bincount(owner, minlength=len(labels)).astype(np.float32)
            for w in FIXED_WEIGHTS:
                top1, _ = top_hits(w * prof_sims + (1 - w) * best, gold)
                rows.setdefault(f"fixed w={w:g}", []).append(top1)
            for prior in PRIORS:
                w = prior / (prior + counts)
                top1, at5 = top_hits(w * prof_sims + (1 - w) * best, gold)
                rows.setdefault(f"rule prior={prior:g}", []).append(top1)
                rows.setdefault(f"rule prior={prior:g} recall5", []).append(at5)
            for floor in FLOORS:
                w = np.maximum(floor, PROFILE_WEIGHT_PRIOR / (PROFILE_WEIGHT_PRIOR + counts))
                top1, _ = top_hits(w * prof_sims + (1 - w) * best, gold)
                rows.setdefault(f"rule prior={PROFILE_WEIGHT_PRIOR:g} floor={floor:g}",
                                []).append(top1)
            # The shipped index, FAISS shortlist included, with the reviewed items as exemplars.
            index = LabelIndex.build(labels, embedder, reuse=label_vectors)
            index.add_exemplars([str(i) for i in chosen], pool_vecs[chosen],
                                [pool[i][1] for i in chosen])
            _, ids = index.search(dev_vecs, 5)
            rows.setdefault("index", []).append(float((ids[:, 0] == gold).mean()))
            rows.setdefault("index recall5", []).append(
                float((ids == gold[:, None]).any(axis=1).mean()))
        mean = {k: float(np.mean(v)) for k, v in rows.items()}
        fixed = {k: v for k, v in mean.items() if k.startswith("fixed")}
        best_fixed = max(fixed, key=lambda k: fixed[k])
        mean["best_fixed"] = fixed[best_fixed]
        mean["best_fixed_weight"] = float(best_fixed.split("=")[1])
        mean["draws"] = draws
        results["by_reviewed"][str(n)] = mean
        print(f"{n!s:>8s} {mean['best_fixed']:.3f} (w={mean['best_fixed_weight']:g})"
              f" {mean[f'rule prior={PROFILE_WEIGHT_PRIOR:g}']:9.3f} {mean['index']:9.3f}  "
              + "  ".join(f"{mean[f'rule prior={p:g}']:.3f}" for p in PRIORS) + "  "
              + "  ".join(f"{mean[f'rule prior={PROFILE_WEIGHT_PRIOR:g} floor={f:g}']:12.3f}"
                          for f in FLOORS), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
