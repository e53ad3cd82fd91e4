"""Judge questions per second of the embedded llama.cpp judge, with 1 and with 2 threads.

Questions are dev-split items of train against their top-3 retrieved labels, asked the way the
engine asks them (an item's candidates together, so the item's prompt prefix is reused). The
load average is recorded: on a shared machine it decides the numbers.

    python bench/judge_speed.py --schema schemas/banking77.yaml --data train.csv \
        --items 20 --out bench/results/judge_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.rac.embedder import SentenceTransformerEmbedder  # noqa: E402
from app.rac.index import LabelIndex  # noqa: E402
from app.rac.judges.llama_cpp import LlamaCppJudge  # noqa: E402
from app.rac.prompts import Question  # noqa: E402
from bench.common import dev_split, load_labels, load_rows  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    labels = load_labels(args.schema)
    dev, _ = dev_split(load_rows(args.data), labels)
    # Items the prompt-variant sample did not use, so no prefix is warm from an earlier run.
    sample = random.Random(1).sample(dev, args.items)
    embedder = SentenceTransformerEmbedder()
    index = LabelIndex.build(labels, embedder)
    by_name = {x.name: x for x in labels}
    cands = index.candidates(embedder.embed([t for t, _ in sample]), args.top_k)
    questions = [Question(t, by_name[c.label]) for (t, _), cs in zip(sample, cands, strict=True)
                 for c in cs]
    report: dict = {"questions": len(questions), "top_k": args.top_k, "by_threads": {}}
    for threads in (int(x) for x in args.threads.split(",")):
        judge = LlamaCppJudge(n_threads=threads)
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        judge.p_yes(questions)
        seconds = time.perf_counter() - started
        judge.close()
        report["by_threads"][str(threads)] = {
            "questions_per_second": len(questions) / seconds,
            "seconds_per_question": seconds / len(questions),
            "load_average_1min_before": load_before, "load_average_1min_after": os.getloadavg()[0]}
        print(f"{threads} thread(s): {len(questions) / seconds:.2f} questions/s "
              f"({seconds / len(questions):.3f} s each), load average {load_before:.1f}",
              flush=True)
    report["model_id"] = judge.model_id
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
