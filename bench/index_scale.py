"""Label index at scale: build time and search latency for a synthetic 10,000-label schema, with the
real bundled embedder. Target: search < 2 ms per item at 10,000 labels.

Measured (median of several runs each):
- build: embedding every profile and example, and the FAISS part alone (vectors given);
- search per item, batched (a chunk of items per call, as batch jobs do) and one at a time (as a
  single API request does), with only the schema's examples and again with many reviewed items
  added as exemplars;
- agreement of the index's top-1 with an exact score of every label (the index shortlists labels
  before scoring them exactly; this checks the shortlist loses nothing);
- embedding per item, for comparison (search is not the whole cost of retrieval).

    python bench/index_scale.py --labels 10000 --out bench/results/index_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.rac.embedder import SentenceTransformerEmbedder  # noqa: E402
from app.rac.index import PROFILE_WEIGHT_PRIOR, LabelIndex  # noqa: E402
from bench.generate_schema import generate  # noqa: E402


def timed(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    """Median wall seconds of `runs` calls."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def exact_top1(index: LabelIndex, queries: np.ndarray, profiles: np.ndarray,
               examples: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Score every label for every query with the index's rule, no shortlist."""
    n_labels = len(profiles)
    prof = queries @ profiles.T
    sims = queries @ examples.T
    best = np.full_like(prof, -np.inf)
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(n_labels + 1))
    sorted_sims = sims[:, order]
    for label in range(n_labels):
        lo, hi = bounds[label], bounds[label + 1]
        if hi > lo:
            best[:, label] = sorted_sims[:, lo:hi].max(axis=1)
    counts = np.bincount(owner, minlength=n_labels).astype(np.float32)
    w = PROFILE_WEIGHT_PRIOR / (PROFILE_WEIGHT_PRIOR + counts)
    total = np.where(counts > 0, w * prof + (1 - w) * best, prof)
    return total.argmax(axis=1)


def search_latency(index: LabelIndex, queries: np.ndarray, k: int, runs: int,
                   chunk: int) -> dict[str, float]:
    n = len(queries)
    batched = timed(lambda: [index.search(queries[i:i + chunk], k)
                             for i in range(0, n, chunk)], runs)
    single_q = queries[: min(n, 200)]
    single = timed(lambda: [index.search(q[None, :], k) for q in single_q], runs)
    return {"batched_ms_per_item": 1000 * batched / n,
            "one_at_a_time_ms_per_item": 1000 * single / len(single_q)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", type=int, default=10_000)
    ap.add_argument("--shared", type=float, default=0.3)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=64, help="items per batched search call")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--exemplars", type=int, default=50_000,
                    help="reviewed items added as exemplars for the second measurement")
    ap.add_argument("--faiss-threads", type=int, default=None,
                    help="OpenMP threads for FAISS (default: FAISS's own choice, every core)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.faiss_threads:
        import faiss

        faiss.omp_set_num_threads(args.faiss_threads)

    syn = generate(args.labels, args.shared, examples=2, n_items=args.queries, seed=0)
    embedder = SentenceTransformerEmbedder()
    started = time.perf_counter()
    index = LabelIndex.build(syn.labels, embedder)
    build_seconds = time.perf_counter() - started
    reuse = index.vectors_by_hash()
    faiss_build = timed(lambda: LabelIndex.build(syn.labels, embedder, reuse=reuse), args.runs)
    texts = [t for t, _ in syn.items]
    started = time.perf_counter()
    queries = embedder.embed(texts)
    embed_ms = 1000 * (time.perf_counter() - started) / len(texts)

    gold = np.array([index.label_ids[g] for _, g in syn.items])
    _, ids = index.search(queries, args.top_k)
    profiles = index._profiles
    exact = exact_top1(index, queries, profiles, index._examples, index._owner)
    report: dict = {
        "labels": args.labels, "shared_vocabulary": args.shared,
        "examples": int(index._example_index.ntotal), "queries": len(texts),
        "top_k": args.top_k, "chunk": args.chunk, "runs": args.runs,
        "embedder": embedder.model_id, "cpu_count": os.cpu_count(),
        "faiss_threads": args.faiss_threads,
        "build_seconds_with_embedding": build_seconds,
        "build_seconds_faiss_only": faiss_build,
        "embed_ms_per_item": embed_ms,
        "top1_accuracy_synthetic": float((ids[:, 0] == gold).mean()),
        "top1_agrees_with_exact_scoring": float((ids[:, 0] == exact).mean()),
        "schema_examples_only": search_latency(index, queries, args.top_k, args.runs,
                                               args.chunk),
    }
    print(f"{args.labels} labels, {report['examples']} examples: build {build_seconds:.1f} s "
          f"(FAISS part {faiss_build:.3f} s), embed {embed_ms:.2f} ms/item")
    print(f"  top-1 agrees with exact scoring: {report['top1_agrees_with_exact_scoring']:.3f}; "
          f"synthetic top-1 accuracy {report['top1_accuracy_synthetic']:.3f}")
    lat = report["schema_examples_only"]
    print(f"  search: batched {lat['batched_ms_per_item']:.3f} ms/item, one at a time "
          f"{lat['one_at_a_time_ms_per_item']:.3f} ms/item")

    if args.exemplars:
        # Reviewed items: near copies of the label's own example vectors (no need to embed).
        rng = np.random.default_rng(0)
        owners = rng.integers(0, args.labels, args.exemplars)
        rows = np.array([index._rows_by_label[o][0] for o in owners])
        noisy = index._examples[rows] + 0.05 * rng.standard_normal(
            (args.exemplars, index.dim)).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        started = time.perf_counter()
        index.add_exemplars([f"r{i}" for i in range(args.exemplars)], noisy,
                            [syn.labels[o].name for o in owners])
        report["add_exemplars_seconds"] = time.perf_counter() - started
        report["with_exemplars"] = {"exemplars": args.exemplars, **search_latency(
            index, queries, args.top_k, args.runs, args.chunk)}
        lat = report["with_exemplars"]
        print(f"  + {args.exemplars} exemplars (added in {report['add_exemplars_seconds']:.2f} s)"
              f": batched {lat['batched_ms_per_item']:.3f} ms/item, one at a time "
              f"{lat['one_at_a_time_ms_per_item']:.3f} ms/item")
    report["load_average"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
