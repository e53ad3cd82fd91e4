"""The cascade (the default strategy) with a given judge, on a dev sample of train and a test
sample: accuracy, coverage at precision 0.95, auto-accepted share, judge calls per item, seconds
per question, the judge's AUC and whether the schema prior gives the judge any weight.

Each split is one `rac eval --strategy cascade` run (`app/cli/evaluate.run_eval`: the service's
own engine, prior and judge, chosen by the usual settings, e.g. `RAC_LLM__MODEL=...` or
`RAC_LLM__MODEL_PATH=...`). When the prior gives the judge no weight, the cascade asks it
nothing on the items, so its AUC is then measured by a probe: the judge is asked about the top
label of exactly the items the cascade left below the cutoff (the questions it would have
asked). Answers go through a judge cache file, so the probe reuses the run's answers and an
interrupted run resumes; a run's seconds/question count only questions really answered.

    RAC_DATA_DIR=... RAC_LLM__MODEL=qwen2.5-coder-1.5b RAC_LLM__N_THREADS=1 \
    python bench/judge_cascade.py --schema schemas/banking77.yaml --train train.csv \
        --test test.csv --dev-n 300 --test-n 500 --cache /tmp/qwen15-cache.json \
        --out bench/results/judge_cascade_qwen15.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.cli.evaluate import run_eval  # noqa: E402
from app.rac.calibration import Calibrator  # noqa: E402
from app.rac.decision import TraceStep  # noqa: E402
from app.rac.evaluation import mann_whitney_auc  # noqa: E402
from app.rac.prompts import Question  # noqa: E402
from bench.common import dev_split, load_labels, load_rows  # noqa: E402


def probe_auc(schema: Path, rows: list[tuple[str, str]], report: dict[str, Any],
              cache: Path) -> dict[str, Any]:
    """AUC of the judge's P(yes) on the top label of the items the cascade left unsure."""
    from app.cli.evaluate import _make_judge
    from app.config import get_settings
    from app.rac.embedder import SentenceTransformerEmbedder
    from app.rac.index import LabelIndex
    from app.rac.judges.caching import CachingJudge, unwrapped

    labels = load_labels(schema)
    settings = get_settings()
    embedder = SentenceTransformerEmbedder(settings.embedder.model_path)
    index = LabelIndex.build(labels, embedder)
    top_k = report["params"]["top_k"]
    calibrator = Calibrator.from_json(report["calibrator"])
    cutoff = report["metrics"]["auto_accepted"]["cutoff"]
    texts = [t for t, _ in rows]
    candidates = index.candidates(embedder.embed(texts), top_k)
    unsure = [i for i, cands in enumerate(candidates) if cands and calibrator.confidence_for(
        [TraceStep(c.label, c.rank, c.score) for c in cands], cands[0].label) < cutoff]
    judge = CachingJudge(_make_judge(), cache)
    before = unwrapped(judge).stats
    calls_before, seconds_before = before.calls, before.seconds
    questions = [Question(texts[i], index.labels[index.label_ids[candidates[i][0].label]])
                 for i in unsure]
    answers = judge.p_yes(questions)
    judge.close()
    right = [candidates[i][0].label == rows[i][1] for i in unsure]
    asked = unwrapped(judge).stats.calls - calls_before
    return {"unsure_items": len(unsure),
            "auc": mann_whitney_auc([p for p, r in zip(answers, right, strict=True) if r],
                                    [p for p, r in zip(answers, right, strict=True) if not r]),
            "right_share_of_unsure": sum(right) / len(right) if right else None,
            "asked_now": asked, "cache_hits": judge.hits,
            "seconds_per_question_now": ((unwrapped(judge).stats.seconds - seconds_before)
                                         / asked if asked else None)}


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    m, cal = report["metrics"], report.get("calibrator", {})
    answered = report.get("judge_cache", {}).get("asked")
    return {
        "n": m["n"], "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "ece": m["ece"],
        "coverage_at_0.95": m["coverage_at_precision"]["0.95"]["coverage"],
        "auto_accepted_share": m["auto_accepted"]["share"],
        "auto_accepted_precision": m["auto_accepted"]["precision"],
        "cutoff": m["auto_accepted"]["cutoff"],
        "judge_calls_per_item": m["llm_calls_per_item"],
        "judge_questions_answered": answered,
        "seconds_per_question": (1 / m["llm_calls_per_second"] if m["llm_calls_per_second"]
                                 else None),
        "judge_auc_on_cascade_questions": m["judge_auc"],
        "judge_weight": cal.get("weights", [0.0])[0] if cal.get("weights") else 0.0,
        "judge_informative": cal.get("meta", {}).get("judge_informative"),
        "prior_judge_questions": cal.get("meta", {}).get("judge_questions"),
        "items_per_second": m["items_per_second"], "setup_seconds": m["setup_seconds"],
        "status_counts": m["status_counts"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=Path, required=True)
    ap.add_argument("--train", type=Path, required=True, help="train.csv (its dev split)")
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--dev-n", type=int, default=300)
    ap.add_argument("--test-n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--splits", default="dev,test")
    ap.add_argument("--batch-size", type=int, default=64,
                    help="items per Engine.classify call (smaller: the cache is saved more often)")
    ap.add_argument("--cache", type=Path, required=True,
                    help="judge answer cache (JSON; kept outside the repository)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    labels = load_labels(args.schema)
    dev, _ = dev_split(load_rows(args.train), labels)
    report: dict[str, Any] = (json.loads(args.out.read_text()) if args.out.exists() else {})
    report.setdefault("splits", {})
    with tempfile.TemporaryDirectory() as tmp:
        dev_rows = random.Random(args.seed).sample(dev, args.dev_n)
        dev_csv = Path(tmp) / "dev.csv"
        with dev_csv.open("w", newline="") as f:
            csv.writer(f).writerows([("text", "category"), *dev_rows])
        splits = {"dev": (dev_csv, None, dev_rows),
                  "test": (args.test, args.test_n, None)}
        for split in args.splits.split(","):
            data, limit, rows = splits[split]
            load_before, started = os.getloadavg(), time.perf_counter()
            run = run_eval(schema=args.schema, data=data, text_col="text", label_col="category",
                           method="cascade", top_k=5, accept_threshold=None, cutoff=0.8,
                           strategy="sequential", window=3, limit=limit, seed=args.seed,
                           batch_size=args.batch_size, judge_cache=args.cache,
                           progress=False)
            result = summarise(run)
            result["load_average_before"] = load_before
            result["load_average_after"] = os.getloadavg()
            result["wall_seconds"] = time.perf_counter() - started
            result["model"] = run["models"]["judge"]
            result["prompt_version"] = run["prompt_version"]
            result["sample"] = ({"dev_split_of": args.train.name, "n": args.dev_n,
                                 "seed": args.seed} if split == "dev" else run["sample"])
            if result["judge_auc_on_cascade_questions"] is None:
                if rows is None:
                    from app.cli.files import load_rows as read_rows
                    from app.cli.files import sample_rows

                    rows = sample_rows(read_rows(data, "text", "category"), limit, args.seed)
                result["probe"] = probe_auc(args.schema, rows, run, args.cache)
            report["splits"][split] = result
            print(split, json.dumps({k: v for k, v in result.items()
                                     if not isinstance(v, dict)}), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
