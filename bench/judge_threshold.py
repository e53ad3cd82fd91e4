"""Choose the judge's accept_threshold from P(yes) recorded by bench/judge_prompts.py (dev split
of train only). No model is run: the engine's sequential rule is replayed on the recorded answers.

For each threshold t (sequential strategy, top_k = the recorded candidates or fewer): the label is
the first candidate, most similar first, with P(yes) >= t; no label if none. Reported: accuracy,
share of items labelled, judge calls per item, and for comparison retrieval's top-1 accuracy on the
same items. Also: does P(yes) of the top candidate rank items by correctness better than the
retrieval score does (AUC of each as a confidence for "top-1 is right")?

    python bench/judge_threshold.py bench/results/judge_prompts.json --variant yn-2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.rac.evaluation import mann_whitney_auc  # noqa: E402

THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7)


def replay(items: list[dict], threshold: float, top_k: int) -> dict[str, float]:
    right = labelled = calls = 0
    for item in items:
        for cand in item["candidates"][:top_k]:
            calls += 1
            if cand["p_yes"] >= threshold:
                labelled += 1
                right += cand["label"] == item["gold"]
                break
    n = len(items)
    return {"threshold": threshold, "accuracy": right / n, "labelled": labelled / n,
            "calls_per_item": calls / n}


def confidence_auc(items: list[dict], key: str) -> float | None:
    """AUC of the top candidate's `key` as a score for 'the top candidate is right'."""
    pos = [it["candidates"][0][key] for it in items if it["candidates"][0]["label"] == it["gold"]]
    neg = [it["candidates"][0][key] for it in items if it["candidates"][0]["label"] != it["gold"]]
    return mann_whitney_auc(pos, neg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--variant", default=None, help="default: every variant in the report")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    data = json.loads(args.report.read_text())
    variants = [args.variant] if args.variant else list(data["variants"])
    out: dict = {}
    for name in variants:
        items = data["variants"][name]["items"]
        k = max(len(it["candidates"]) for it in items)
        retrieval = sum(it["candidates"][0]["label"] == it["gold"] for it in items) / len(items)
        rows = {str(top_k): [replay(items, t, top_k) for t in THRESHOLDS]
                for top_k in range(1, k + 1)}
        out[name] = {"retrieval_top1": retrieval, "replay": rows,
                     "top1_right_auc_p_yes": confidence_auc(items, "p_yes"),
                     "top1_right_auc_retrieval_score": confidence_auc(items, "score")}
        print(f"{name}: retrieval top-1 {retrieval:.3f}; 'top-1 is right' AUC: P(yes) "
              f"{out[name]['top1_right_auc_p_yes']:.3f} vs retrieval score "
              f"{out[name]['top1_right_auc_retrieval_score']:.3f}")
        for top_k, replays in rows.items():
            print(f"  top_k={top_k}: " + "  ".join(
                f"t={r['threshold']:g}: acc {r['accuracy']:.3f} lab {r['labelled']:.2f} "
                f"calls {r['calls_per_item']:.2f}" for r in replays))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
