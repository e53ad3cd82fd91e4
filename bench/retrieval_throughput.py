"""Retrieval throughput with and without the learnt scorer, paired against an earlier revision.

The labelling throughput target of the learnt scorer is "retrieval not lower than before the
scorer by more than 20%". This times, on the same precomputed test vectors and in alternation
(so a change of machine load hits every variant alike):

- `before`: the label index of `--baseline-ref` (the pre-vectorised index), top_k alone (the
  rule as it was before the scorer existed);
- `before+scorer`: that index re-ranked by the learnt scorer (what the baseline revision did);
- `now`, `now+scorer`: this checkout's index, without and with the scorer.

It also checks that both indexes make the same decisions (top label per item). Median items/s
over `--alternations` runs per variant.

    python bench/retrieval_throughput.py --schema schemas/banking77.yaml --train train.csv \
        --test test.csv --baseline-ref COMMIT --out bench/results/retrieval_throughput.json \
        [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.rac.index import Candidate, LabelIndex  # noqa: E402
from app.rac.scorer import fit_scorer  # noqa: E402
from bench.learnt_scorer import RETRIEVAL, Setup, _reviewed  # noqa: E402

PER_LABEL = (0, 10, 20, None)  # None: all of the pool


def baseline_index_class(ref: str) -> type:
    """The LabelIndex class of app/rac/index.py at git revision `ref`, loaded beside today's."""
    source = subprocess.check_output(["git", "-C", str(ROOT), "show", f"{ref}:app/rac/index.py"])
    module = types.ModuleType("baseline_index")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, f"{ref}:app/rac/index.py", "exec"), module.__dict__)  # noqa: S102
    # today's candidate type (same fields, and the trace step the engine now asks of it)
    module.Candidate = Candidate  # type: ignore[attr-defined]
    return module.LabelIndex  # type: ignore[no-any-return]


def copy_index(cls: type, base: LabelIndex, s: Setup, reviewed: list[int]):  # type: ignore[no-untyped-def]
    index = cls(base.labels, base.model_id, base._profiles, base._profile_hashes,
                base._examples, base._owner, base._example_hashes)
    if reviewed:
        index.add_exemplars([str(i) for i in reviewed], s.pool_vectors[reviewed],
                            [s.pool[i][1] for i in reviewed])
    return index


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=Path, required=True)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--baseline-ref", required=True)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--alternations", type=int, default=3)
    ap.add_argument("--per-label", type=int, nargs="+", default=None,
                    help="review counts to time (default 0 10 20 and all of the pool)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for embedding (1: on a shared machine two spin-wait)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)

    counts: list[int | None] = list(args.per_label) if args.per_label else list(PER_LABEL)
    s = Setup(args, pool_per_label=None if None in counts else max(counts))
    old_cls = baseline_index_class(args.baseline_ref)
    vectors = s.test_vectors
    report: dict = {"baseline_ref": args.baseline_ref, "test_items": len(vectors),
                    "top_k": RETRIEVAL.top_k, "alternations": args.alternations,
                    "load_average_start": os.getloadavg(), "rounds": {}}
    for n in counts:
        reviewed = _reviewed(s, n)
        new = copy_index(LabelIndex, s.schema_index, s, reviewed)
        old = copy_index(old_cls, s.schema_index, s, reviewed)
        scorer = fit_scorer(new, version=1) if reviewed else None
        variants = {"before": (old, None), "before+scorer": (old, scorer),
                    "now": (new, None), "now+scorer": (new, scorer)}
        timings: dict[str, list[float]] = {name: [] for name in variants}
        labels: dict[str, list] = {}
        for _ in range(args.alternations):
            for name, (index, sc) in variants.items():
                started = time.perf_counter()
                decisions = s.label(vectors, index, sc)
                timings[name].append(len(vectors) / (time.perf_counter() - started))
                labels[name] = [d.label for d in decisions]
        key = "all" if n is None else str(n)
        row = {"reviewed": len(reviewed),
               "items_per_second": {k: statistics.median(v) for k, v in timings.items()},
               "runs": timings,
               "accuracy": {k: s.accuracy_of(v) for k, v in labels.items()},
               "same_labels_as_before": {
                   "now": float(np.mean([a == b for a, b in zip(labels["now"], labels["before"],
                                                                 strict=True)])),
                   "now+scorer": float(np.mean([a == b for a, b in zip(
                       labels["now+scorer"], labels["before+scorer"], strict=True)]))},
               "load_average": os.getloadavg()}
        ips = row["items_per_second"]
        row["scorer_rate_vs_before"] = ips["now+scorer"] / ips["before"]
        report["rounds"][key] = row
        print(key, json.dumps({k: row[k] for k in ("items_per_second", "accuracy",
                                                    "same_labels_as_before",
                                                    "scorer_rate_vs_before", "load_average")}),
              flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
