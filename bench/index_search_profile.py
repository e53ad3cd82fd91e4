"""Where does a label-index search spend its time at 10,000 labels? A diagnostic for
bench/index_scale.py: the index is filled with random unit vectors (no embedder, so it runs in
seconds) and each part of `LabelIndex.search` is timed on its own, with FAISS's default OpenMP
threads and with one thread. The index's float16 example scan is timed beside a float32 flat
index over the same vectors.

    python bench/index_search_profile.py --labels 10000 \
        --out bench/results/index_search_profile.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.rac.index import LabelIndex  # noqa: E402
from app.rac.prompts import LabelInfo  # noqa: E402


def per_item_ms(fn, n_items: int, runs: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times) / n_items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", type=int, default=10_000)
    ap.add_argument("--examples", type=int, default=2, help="per label")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    rng = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        x = rng.standard_normal((n, args.dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    n_ex = args.labels * args.examples
    labels = [LabelInfo(f"label_{i}", "d", ("e",) * args.examples) for i in range(args.labels)]
    index = LabelIndex(labels, "random", unit(args.labels), [str(i) for i in range(args.labels)],
                       unit(n_ex), np.repeat(np.arange(args.labels), args.examples),
                       [str(i) for i in range(n_ex)])
    queries = unit(args.queries)
    n = len(queries)
    # The same example vectors in a float32 flat index: what the float16 shortlist replaced.
    flat_examples = faiss.IndexFlatIP(args.dim)
    flat_examples.add(index._examples)
    default_threads = faiss.omp_get_max_threads()
    report: dict = {"labels": args.labels, "examples": n_ex, "dim": args.dim, "queries": n,
                    "runs": args.runs, "cpu_count": os.cpu_count(), "by_faiss_threads": {}}
    for threads in (default_threads, 1):
        faiss.omp_set_num_threads(threads)
        one = {
            "search_one_at_a_time": per_item_ms(
                lambda: [index.search(q[None, :], 5) for q in queries], n, args.runs),
            "search_batched": per_item_ms(lambda: index.search(queries, 5), n, args.runs),
            "faiss_profiles_one_at_a_time": per_item_ms(
                lambda: [index._profile_index.search(q[None, :], 32) for q in queries], n,
                args.runs),
            "faiss_examples_one_at_a_time": per_item_ms(
                lambda: [index._example_index.search(q[None, :], 64) for q in queries], n,
                args.runs),
            "faiss_examples_float32_flat_one_at_a_time": per_item_ms(
                lambda: [flat_examples.search(q[None, :], 64) for q in queries], n, args.runs),
            "faiss_examples_batched": per_item_ms(
                lambda: index._example_index.search(queries, 64), n, args.runs),
            "faiss_examples_float32_flat_batched": per_item_ms(
                lambda: flat_examples.search(queries, 64), n, args.runs),
            "faiss_both_batched": per_item_ms(
                lambda: (index._profile_index.search(queries, 32),
                         index._example_index.search(queries, 64)), n, args.runs),
        }
        report["by_faiss_threads"][str(threads)] = one
        print(f"FAISS threads {threads}: " + ", ".join(f"{k} {v:.3f} ms/item"
                                                       for k, v in one.items()), flush=True)
    faiss.omp_set_num_threads(default_threads)
    # The per-call bookkeeping that does not depend on the number of queries.
    rows = index._rows_by_label
    report["examples_per_label_count_ms_per_call"] = per_item_ms(
        lambda: np.array([len(r) for r in rows], dtype=np.float32), 1, args.runs)
    print(f"counting examples per label (every search call): "
          f"{report['examples_per_label_count_ms_per_call']:.3f} ms")
    report["load_average"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
