"""The AUC of a judge's answers kept in a judge cache file (`rac eval --judge-cache`,
bench/judge_cascade.py): for every cached question whose text has a known gold label (a schema
example, or a row of the given labelled CSVs), is P(yes) higher when the asked label is the
gold one? Grouped by where the text comes from (and whether the question showed the text itself
among the label's examples), per model and prompt version.

Used when a run could not finish (a slow judge on a shared machine): the questions it did answer
still measure the judge.

    python bench/judge_cache_auc.py --schema schemas/banking77.yaml --cache qwen15-cache.json \
        --data train.csv --data test.csv --out bench/results/judge_cache_auc_qwen15.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.rac.evaluation import mann_whitney_auc  # noqa: E402
from bench.common import load_labels, load_rows  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=Path, required=True)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--data", type=Path, action="append", default=[],
                    help="labelled CSV (text, category); repeat for several")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    gold: dict[str, tuple[str, str]] = {}
    for label in load_labels(args.schema):
        for example in label.examples:
            gold[example.strip()] = (label.name, "schema examples")
    for path in args.data:
        for text, category in load_rows(path):
            gold.setdefault(text.strip(), (category, path.name))
    groups: dict[tuple[str, str, str], list[tuple[float, bool]]] = defaultdict(list)
    for key, p in json.loads(args.cache.read_text()).items():
        model, prompt, text, label, _, shown = json.loads(key)
        found = gold.get(text.strip())
        if found is not None:
            source = found[1]
            if text.strip() in {e.strip() for e in shown}:  # the answer was in the prompt
                source += " (the text among the label's examples shown)"
            groups[(model, prompt, source)].append((p, label == found[0]))
    report = {"cache": args.cache.name, "groups": []}
    for (model, prompt, source), answers in sorted(groups.items()):
        pos = [p for p, right in answers if right]
        neg = [p for p, right in answers if not right]
        row = {"model": model, "prompt_version": prompt, "texts_from": source,
               "questions": len(answers), "gold_label_asked": len(pos),
               "auc": mann_whitney_auc(pos, neg)}
        report["groups"].append(row)
        print(json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
