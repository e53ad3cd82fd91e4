"""Learning curve of review on Banking77: how labels improve as people review items.

Review is simulated in rounds: after round n, n items per label from the pool of train (never the
dev split, bench.common) have been reviewed and joined the label index as exemplars
(`LabelIndex.add_exemplars`, with the reviewed items' embeddings), as the service adds them. The
rounds are nested: the items reviewed by round 5 include those of round 2.

Each round is evaluated on test: retrieval only on all test items, RAC (the engine with the
bundled judge and the service's defaults for top_k and accept_threshold) on a fixed sample
(seed 0, the rows `rac eval --limit 500` uses).
Judge answers are cached across rounds (a question asked before has the same answer), so later
rounds ask only about new candidates; RAC timings are therefore not reported.

    python bench/learning_curve.py --schema schemas/banking77.yaml --train train.csv \
        --test test.csv --out bench/results/learning_curve.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.cli.files import sample_rows  # noqa: E402
from app.config import EngineSettings  # noqa: E402
from app.rac.bundled import embedder_model_dir  # noqa: E402
from app.rac.decision import ClassifyParams  # noqa: E402
from app.rac.embedder import SentenceTransformerEmbedder  # noqa: E402
from app.rac.engine import Engine  # noqa: E402
from app.rac.evaluation import evaluate  # noqa: E402
from app.rac.index import LabelIndex  # noqa: E402
from app.rac.judges.caching import CachingJudge  # noqa: E402
from app.rac.training import LabelledText, select_examples  # noqa: E402
from bench.common import dev_split, load_labels, load_rows  # noqa: E402

ROUNDS = (0, 1, 2, 5, 10, 20)
KEEP = ("n", "accuracy", "macro_f1", "labelled_share", "llm_calls_per_item", "judge_auc",
        "coverage_at_precision", "ece")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=Path, required=True)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--rounds", default=",".join(map(str, ROUNDS)))
    ap.add_argument("--rac-rounds", default=None,
                    help="rounds that also run RAC with the LLM (default: every round; "
                         "'' for none)")
    ap.add_argument("--limit", type=int, default=500, help="test sample for RAC (seed 0)")
    defaults = EngineSettings()  # the service's defaults, so RAC here is RAC as served
    ap.add_argument("--top-k", type=int, default=defaults.top_k)
    ap.add_argument("--accept-threshold", type=float, default=defaults.accept_threshold)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="which items are reviewed")
    ap.add_argument("--judge-cache", type=Path, default=None,
                    help="JSON file of judge answers kept across runs")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    rounds = [int(x) for x in args.rounds.split(",")]
    rac_rounds = rounds if args.rac_rounds is None else [
        int(x) for x in args.rac_rounds.split(",") if x.strip()]
    labels = load_labels(args.schema)
    names = {x.name for x in labels}
    _, pool = dev_split(load_rows(args.train), labels)
    pool_rows = [LabelledText(t, c) for t, c in pool]
    test = load_rows(args.test)
    sample = sample_rows(test, args.limit, 0)
    embedder = SentenceTransformerEmbedder(embedder_model_dir())
    test_vectors = embedder.embed([t for t, _ in test])
    sample_index = {t: i for i, (t, _) in enumerate(test)}
    sample_vectors = test_vectors[[sample_index[t] for t, _ in sample]]
    index = LabelIndex.build(labels, embedder)
    judge = None
    if rac_rounds:
        from app.rac.judges.llama_cpp import LlamaCppJudge

        inner = LlamaCppJudge(n_threads=args.threads)
        cache = args.judge_cache or args.out.with_suffix(".judge-cache.json")
        judge = CachingJudge(inner, cache)
    retrieval = ClassifyParams(top_k=args.top_k, strategy="retrieval")
    rac = ClassifyParams(top_k=args.top_k, accept_threshold=args.accept_threshold,
                         strategy="sequential")
    report: dict = {"rounds": {}, "test_items": len(test), "rac_sample": len(sample),
                    "top_k": args.top_k, "accept_threshold": args.accept_threshold,
                    "judge": judge.model_id if judge else None,
                    "prompt_version": judge.prompt_version if judge else None}
    reviewed_keys: set[str] = set()
    for n in rounds:
        reviewed = select_examples(pool_rows, n, args.seed) if n else []
        new = [r for r in reviewed if f"{r.text}\0{r.label}" not in reviewed_keys]
        if new:
            index.add_exemplars([f"{r.text}\0{r.label}" for r in new],
                                embedder.embed([r.text for r in new]), [r.label for r in new])
            reviewed_keys.update(f"{r.text}\0{r.label}" for r in new)
        row: dict = {"reviewed": len(reviewed), "exemplars": index.exemplar_count}
        decisions = Engine(embedder, None).classify([t for t, _ in test], index, retrieval,
                                                    vectors=test_vectors)
        row["retrieval"] = {k: v for k, v in evaluate([g for _, g in test], decisions, names,
                                                      seconds=0.0).items() if k in KEEP}
        if judge is not None and n in rac_rounds:
            decisions = []
            for start in range(0, len(sample), 64):
                decisions += Engine(embedder, judge).classify(
                    [t for t, _ in sample[start:start + 64]], index, rac,
                    vectors=sample_vectors[start:start + 64])
                judge.save()
                print(f"  round {n}: RAC {len(decisions)}/{len(sample)}", flush=True)
            row["rac"] = {k: v for k, v in evaluate([g for _, g in sample], decisions, names,
                                                    seconds=0.0).items() if k in KEEP}
            # retrieval on the same sample, so the two columns compare like with like
            same = Engine(embedder, None).classify([t for t, _ in sample], index, retrieval,
                                                   vectors=sample_vectors)
            row["retrieval_on_rac_sample"] = evaluate([g for _, g in sample], same, names,
                                                      seconds=0.0)["accuracy"]
        report["rounds"][str(n)] = row
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
        print(line(n, row), flush=True)
    print(table(report))


def line(n: int, row: dict) -> str:
    r = row["retrieval"]
    text = f"round {n:>2}/label: retrieval acc {r['accuracy']:.3f} F1 {r['macro_f1']:.3f}"
    if "rac" in row:
        text += (f" | RAC acc {row['rac']['accuracy']:.3f} F1 {row['rac']['macro_f1']:.3f}"
                 f" labelled {row['rac']['labelled_share']:.2f}")
    return text


def table(report: dict) -> str:
    out = ["| reviewed per label | retrieval acc | retrieval macro-F1 | RAC acc | RAC macro-F1 "
           "| RAC labelled | retrieval acc on the RAC sample |",
           "|---|---|---|---|---|---|---|"]
    for n, row in report["rounds"].items():
        r = row["retrieval"]
        rac = row.get("rac")
        cells = [n, f"{r['accuracy']:.3f}", f"{r['macro_f1']:.3f}"]
        cells += ([f"{rac['accuracy']:.3f}", f"{rac['macro_f1']:.3f}",
                   f"{rac['labelled_share']:.2f}", f"{row['retrieval_on_rac_sample']:.3f}"]
                  if rac else ["-"] * 4)
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
