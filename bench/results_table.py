"""Print the markdown table of docs/results.md from `rac eval` JSON reports.

    python bench/results_table.py bench/results/test_*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def fmt(x: object, spec: str = ".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def row(report: dict) -> str:
    m = report["metrics"]
    p = report.get("params", {})
    cap = m["coverage_at_precision"]
    cache = report.get("judge_cache")
    timed = cache is None or cache["timings_valid"]
    method = report["method"]
    if method == "rac":
        method += f" (t={p['accept_threshold']:g})"
    k = p.get("top_k", "-") if report["method"] != "all-in-prompt" else "-"
    cells = [
        method, str(k), str(m["n"]), fmt(m["accuracy"]), fmt(m["macro_f1"]),
        fmt(cap["0.90"]["coverage"]), fmt(cap["0.95"]["coverage"]), fmt(m["ece"]),
        fmt(m["llm_calls_per_item"], ".2f"), fmt(m["judge_auc"]),
        fmt(m["items_per_second"], ".2f") if timed else "(cached)",
        fmt(m["latency_p50_s"], ".3f") if timed else "(cached)",
        fmt(m["latency_p95_s"], ".3f") if timed else "(cached)",
        fmt(m["llm_calls_per_second"], ".2f"),
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    print("| method | top_k | n | accuracy | macro-F1 | coverage @ P0.90 | coverage @ P0.95 | ECE "
          "| LLM calls/item | judge AUC | items/s | p50 s/item | p95 s/item | LLM calls/s |")
    print("|---" * 14 + "|")
    for path in sys.argv[1:]:
        print(row(json.loads(Path(path).read_text())))


if __name__ == "__main__":
    main()
