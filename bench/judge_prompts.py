"""How well does the embedded judge separate the right label from the other retrieved candidates,
for a few prompt variants? Measured on a sample of the dev split of train (never on test).

For every dev item the bundled embedder retrieves the top-k labels; the judge is asked about each
(item, candidate). Reported per variant:

- pooled AUC: P(yes) of gold candidates vs all other asked candidates (what an absolute
  `accept_threshold` can exploit);
- within-item AUC: the same, but only comparing candidates of the same item (what re-ranking an
  item's candidates by P(yes) could exploit);
- the P(yes) distribution and seconds per question.

The raw P(yes) per (item, candidate) are written too, so thresholds can be studied without asking
again (bench/judge_threshold.py).

    python bench/judge_prompts.py --schema schemas/banking77.yaml --data train.csv \
        --n 300 --top-k 3 --variants yn-1,plain,topic --out bench/results/judge_prompts.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.rac.embedder import SentenceTransformerEmbedder  # noqa: E402
from app.rac.evaluation import mann_whitney_auc  # noqa: E402
from app.rac.index import LabelIndex  # noqa: E402
from app.rac.judges import llama_cpp  # noqa: E402
from app.rac.prompts import SYSTEM, Question, readable  # noqa: E402
from app.rac.prompts import messages_for as current_messages  # noqa: E402
from bench.common import dev_split, load_labels, load_rows  # noqa: E402

Messages = list[dict[str, str]]


def v_yn1(q: Question) -> Messages:
    """The first prompt (yn-1): system rule, item, label, description, two examples."""
    label = q.label
    lines = [f"Text: {q.text.strip()}", "", f"Label: {readable(label.name)}",
             f"Description: {label.description.strip()}"]
    examples = [e for e in label.examples[:2] if e.strip()]
    if examples:
        lines.append("Examples of texts with this label: " + " | ".join(examples))
    lines += ["", "Does this label fit the text? Answer yes or no."]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def v_noex(q: Question) -> Messages:
    """yn-1 without the examples: shorter, so a small model attends to the description."""
    label = q.label
    lines = [f"Text: {q.text.strip()}", "", f"Label: {readable(label.name)}",
             f"Description: {label.description.strip()}", "",
             "Does this label fit the text? Answer yes or no."]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def v_plain(q: Question) -> Messages:
    """No system message; one direct question with the label name and its first sentence."""
    first = q.label.description.strip().split(". ")[0].rstrip(".")
    content = (f'Customer message: "{q.text.strip()}"\n\n'
               f"Is this message about {readable(q.label.name)} ({first})? Answer yes or no.")
    return [{"role": "user", "content": content}]


def v_topic(q: Question) -> Messages:
    """The label name only: no description, no examples (the shortest question)."""
    content = (f'Message: "{q.text.strip()}"\n'
               f"Topic: {readable(q.label.name)}\n"
               "Is the message about this topic? Answer yes or no.")
    return [{"role": "user", "content": content}]


def v_examples(q: Question) -> Messages:
    """Compare with the label's examples: is the text asking the same thing as they do?"""
    examples = "\n".join(f"- {e}" for e in q.label.examples[:2] if e.strip())
    content = (f'Message: "{q.text.strip()}"\n\n'
               f"Messages labelled {readable(q.label.name)}:\n{examples}\n\n"
               "Is the message asking the same kind of thing as these? Answer yes or no.")
    return [{"role": "user", "content": content}]


VARIANTS: dict[str, Callable[[Question], Messages]] = {
    "yn-1": v_yn1, "noex": v_noex, "plain": v_plain, "topic": v_topic,
    "examples": v_examples, "current": current_messages,
}


def within_item_auc(items: list[dict]) -> float | None:
    wins = pairs = 0.0
    for item in items:
        pos = [c["p_yes"] for c in item["candidates"] if c["label"] == item["gold"]]
        neg = [c["p_yes"] for c in item["candidates"] if c["label"] != item["gold"]]
        for p in pos:
            for q in neg:
                pairs += 1
                wins += 1.0 if p > q else 0.5 if p == q else 0.0
    return wins / pairs if pairs else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="train.csv (dev split is taken)")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--variants", default="yn-1,noex,plain,topic")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None,
                    help="llama.cpp threads (1 is faster than 2 when other work shares the cores)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    labels = load_labels(args.schema)
    dev, _ = dev_split(load_rows(args.data), labels)
    sample = random.Random(args.seed).sample(dev, args.n)
    embedder = SentenceTransformerEmbedder()
    index = LabelIndex.build(labels, embedder)
    cands = index.candidates(embedder.embed([t for t, _ in sample]), args.top_k)
    by_name = {x.name: x for x in labels}
    judge = llama_cpp.LlamaCppJudge(n_threads=args.threads)

    report: dict = {"n": args.n, "top_k": args.top_k, "seed": args.seed, "threads": args.threads,
                    "model_id": judge.model_id, "gold_in_candidates":
                    sum(g in [c.label for c in cs] for (_, g), cs in
                        zip(sample, cands, strict=True)) / args.n, "variants": {}}
    if args.out.exists():  # keep variants measured earlier on the same sample
        earlier = json.loads(args.out.read_text())
        if all(earlier.get(k) == report[k] for k in ("n", "top_k", "seed", "model_id")):
            report["variants"] = earlier["variants"]
    for name in args.variants.split(","):
        llama_cpp.messages_for = VARIANTS[name]  # the judge renders through this name
        questions = [Question(text, by_name[c.label]) for (text, _), cs in
                     zip(sample, cands, strict=True) for c in cs]
        started = time.perf_counter()
        answers = judge.p_yes(questions)
        seconds = time.perf_counter() - started
        items, k = [], 0
        for (text, gold), cs in zip(sample, cands, strict=True):
            items.append({"text": text, "gold": gold, "candidates": [
                {"label": c.label, "rank": c.rank, "score": c.score, "p_yes": answers[k + j]}
                for j, c in enumerate(cs)]})
            k += len(cs)
        pos = [c["p_yes"] for it in items for c in it["candidates"] if c["label"] == it["gold"]]
        neg = [c["p_yes"] for it in items for c in it["candidates"] if c["label"] != it["gold"]]
        result = {
            "pooled_auc": mann_whitney_auc(pos, neg),
            "within_item_auc": within_item_auc(items),
            "p_yes_median_gold": statistics.median(pos) if pos else None,
            "p_yes_median_other": statistics.median(neg) if neg else None,
            "questions": len(questions),
            "seconds_per_question": seconds / len(questions),
            "example_prompt": judge.render(questions[0]),
            "items": items,
        }
        report["variants"][name] = result
        print(f"{name:10s} pooled AUC {result['pooled_auc']:.3f}  within-item AUC "
              f"{result['within_item_auc']:.3f}  median P(yes) gold "
              f"{result['p_yes_median_gold']:.3f} other {result['p_yes_median_other']:.3f}  "
              f"{result['seconds_per_question']:.3f} s/question", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
