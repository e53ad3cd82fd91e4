"""Item-first (`yn-1`) against label-first (`yn-2`) prompts, paired: the same judge, the same dev
questions, asked the way the engine asks them (one `Judge.p_yes` batch per chunk of items).

Configurations, in one process, one after the other:

- `yn-1`: the item first; consecutive questions of one item reuse its prefix (the old judge);
- `yn-2-nostate`: the label first, questions ordered by label within a batch, no saved states;
- `yn-2`: the label first with saved prefix states per label (LRU), the default;
- `yn-3`: the label and the question first, the item last, with saved states.

Reported per configuration: questions/s, pooled judge AUC (P(yes) of the gold candidate against
the other candidates), within-item AUC, the answers' largest difference from `yn-2-nostate` for
`yn-2` (saved states must not change the answer), and the load average. Dev split of train only.

    python bench/judge_prefix.py --schema schemas/banking77.yaml --data train.csv \
        --items 150 --top-k 3 --out bench/results/judge_prefix.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.rac.embedder import SentenceTransformerEmbedder  # noqa: E402
from app.rac.evaluation import mann_whitney_auc  # noqa: E402
from app.rac.index import LabelIndex  # noqa: E402
from app.rac.judges.llama_cpp import DEFAULT_PREFIX_CACHE_BYTES, LlamaCppJudge  # noqa: E402
from app.rac.prompts import Question  # noqa: E402
from bench.common import dev_split, load_labels, load_rows  # noqa: E402
from bench.judge_prompts import within_item_auc  # noqa: E402

CONFIGS = {"yn-1": ("yn-1", 0), "yn-2-nostate": ("yn-2", 0),
           "yn-2": ("yn-2", DEFAULT_PREFIX_CACHE_BYTES),
           "yn-3": ("yn-3", DEFAULT_PREFIX_CACHE_BYTES)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="train.csv (its dev split)")
    ap.add_argument("--items", type=int, default=150)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=64, help="items per p_yes batch (the engine's)")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model-path", type=Path, default=None, help="GGUF (default: bundled)")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--prefix-cache-mb", type=int, default=None,
                    help="saved states' budget of the configurations that keep them "
                         "(default: the judge's)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    labels = load_labels(args.schema)
    dev, _ = dev_split(load_rows(args.data), labels)
    sample = random.Random(args.seed).sample(dev, args.items)
    embedder = SentenceTransformerEmbedder()
    index = LabelIndex.build(labels, embedder)
    by_name = {x.name: x for x in labels}
    cands = index.candidates(embedder.embed([t for t, _ in sample]), args.top_k)
    chunks = [[Question(t, by_name[c.label]) for (t, _), cs in
               zip(sample[i:i + args.chunk], cands[i:i + args.chunk], strict=True) for c in cs]
              for i in range(0, len(sample), args.chunk)]
    gold = [c.label == g for (_, g), cs in zip(sample, cands, strict=True) for c in cs]
    report: dict[str, Any] = {"items": args.items, "top_k": args.top_k, "chunk": args.chunk,
                              "seed": args.seed, "threads": args.threads,
                              "questions": len(gold), "gold": gold, "configs": {}}
    answers_of: dict[str, list[float]] = {}
    for name in args.configs.split(","):
        prompt, cache_bytes = CONFIGS[name]
        if cache_bytes and args.prefix_cache_mb is not None:
            cache_bytes = args.prefix_cache_mb * 1024 * 1024
        judge = LlamaCppJudge(args.model_path, n_threads=args.threads, prompt_version=prompt,
                              prefix_cache_bytes=cache_bytes)
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        answers = [p for chunk in chunks for p in judge.p_yes(chunk)]
        seconds = time.perf_counter() - started
        answers_of[name] = answers
        items, k = [], 0
        for (_, g), cs in zip(sample, cands, strict=True):
            items.append({"gold": g, "candidates": [{"label": c.label, "p_yes": answers[k + j]}
                                                    for j, c in enumerate(cs)]})
            k += len(cs)
        states = judge.prefix_states
        result = {
            "prompt_version": prompt, "prefix_cache_bytes": cache_bytes,
            "questions_per_second": len(answers) / seconds,
            "seconds_per_question": seconds / len(answers),
            "pooled_auc": mann_whitney_auc([p for p, y in zip(answers, gold, strict=True) if y],
                                           [p for p, y in zip(answers, gold, strict=True)
                                            if not y]),
            "within_item_auc": within_item_auc(items),
            "prefix_states": {"kept": len(states), "bytes": states.bytes, "hits": states.hits,
                              "misses": states.misses, "evictions": states.evictions},
            "load_average_1min_before": load_before,
            "load_average_1min_after": os.getloadavg()[0],
            "example_prompt": judge.render(chunks[0][0]),
            "answers": answers,  # in question order, for paired comparisons of configurations
        }
        if name == "yn-2" and "yn-2-nostate" in answers_of:
            result["max_abs_difference_from_no_state"] = max(
                abs(a - b) for a, b in zip(answers, answers_of["yn-2-nostate"], strict=True))
        report["model_id"] = judge.model_id
        judge.close()
        report["configs"][name] = result
        print(f"{name:13s} {result['questions_per_second']:.2f} questions/s  pooled AUC "
              f"{result['pooled_auc']:.3f}  within-item AUC {result['within_item_auc']:.3f}  "
              f"load {load_before:.1f}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
