"""Train the judge on n reviewed items per label (simulated from Banking77 train) and measure what
it adds: training time, judge calls per second on each serving path (llama.cpp on the written
GGUF, transformers on the same file) and whether both give the same answers, then RAC on a fixed
test sample with the trained judge (accuracy, macro-F1, judge AUC, calls per item).

The reviewed items come from the pool of train (bench.common: never the dev split), chosen as
`learning_curve.py` chooses them (same seed, nested rounds), and join the label index as
exemplars, so the "before" numbers are learning_curve.py's RAC rows at the same round.

    python bench/judge_training.py --schema schemas/banking77.yaml --train train.csv \
        --test test.csv --per-label 5,10 --work-dir /tmp/judges \
        --out bench/results/judge_training.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.cli.files import sample_rows  # noqa: E402
from app.rac.bundled import embedder_model_dir  # noqa: E402
from app.rac.decision import ClassifyParams  # noqa: E402
from app.rac.embedder import SentenceTransformerEmbedder  # noqa: E402
from app.rac.engine import Engine  # noqa: E402
from app.rac.evaluation import evaluate, mann_whitney_auc  # noqa: E402
from app.rac.index import LabelIndex  # noqa: E402
from app.rac.judge import Judge  # noqa: E402
from app.rac.judges.llama_cpp import LlamaCppJudge  # noqa: E402
from app.rac.judges.trained_llama_cpp import TrainedLlamaCppJudge  # noqa: E402
from app.rac.judges.transformers_judge import TransformersJudge  # noqa: E402
from app.rac.prompts import Question  # noqa: E402
from app.rac.training import (  # noqa: E402
    LabelledText,
    TrainConfig,
    schema_examples,
    select_examples,
    train_judge,
)
from bench.common import dev_split, load_labels, load_rows  # noqa: E402


def reviewed_index(labels, embedder, reviewed):  # type: ignore[no-untyped-def]
    index = LabelIndex.build(labels, embedder)
    if reviewed:
        vectors = embedder.embed([r.text for r in reviewed])
        index.add_exemplars([f"r{i}" for i in range(len(reviewed))], vectors,
                            [r.label for r in reviewed])
    return index


def speed(judge: Judge, questions: list[Question]) -> dict[str, float]:
    """Calls per second asking the questions as the engine does: the first candidate of every
    item in one call, then the second of every item, and so on (sequential rounds)."""
    rounds: dict[int, list[int]] = {}
    seen: dict[str, int] = {}
    for i, q in enumerate(questions):
        rank = seen.get(q.text, 0)
        seen[q.text] = rank + 1
        rounds.setdefault(rank, []).append(i)
    answers = [0.0] * len(questions)
    judge.p_yes(questions[:2])  # warm-up: first-call allocations are not the judge's speed
    started = time.perf_counter()
    for ids in rounds.values():
        for i, p in zip(ids, judge.p_yes([questions[i] for i in ids]), strict=True):
            answers[i] = p
    seconds = time.perf_counter() - started
    return {"calls": len(questions), "seconds": seconds,
            "calls_per_second": len(questions) / seconds, "answers": answers}


def alternate(path: Path, questions: list[Question], threads: int, repeats: int
              ) -> dict[str, dict[str, list[float]]]:
    """Both serving paths on the same questions, taking turns (A B A B ...) so that both see the
    same background load; in engine rounds (batched) and one question per call (the sync
    classify endpoint)."""
    judges: dict[str, Judge] = {
        "llama_cpp": TrainedLlamaCppJudge(path, model_id=path.stem, n_threads=threads),
        "transformers": TransformersJudge(path, model_id=path.stem, threads=threads)}
    out: dict[str, dict[str, list[float]]] = {k: {"rounds": [], "one_at_a_time": []}
                                              for k in judges}
    single = questions[:20]
    for _ in range(repeats):
        for name, judge in judges.items():
            out[name]["rounds"].append(speed(judge, questions)["calls_per_second"])
            started = time.perf_counter()
            for q in single:
                judge.p_yes([q])
            out[name]["one_at_a_time"].append(len(single) / (time.perf_counter() - started))
    return out


def compare(a: list[float], b: list[float]) -> dict[str, float]:
    diffs = [abs(x - y) for x, y in zip(a, b, strict=True)]
    return {"max_abs_diff": max(diffs), "mean_abs_diff": sum(diffs) / len(diffs),
            "same_decision_at_0.5": sum((x >= 0.5) == (y >= 0.5) for x, y in zip(a, b,
                                                                                 strict=True))
            / len(a)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=Path, required=True)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--per-label", default="5,10")
    ap.add_argument("--limit", type=int, default=500, help="test sample for RAC (seed 0)")
    ap.add_argument("--speed-items", type=int, default=60,
                    help="test items whose top-3 candidates time the serving paths")
    ap.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    ap.add_argument("--train-layers", type=int, default=TrainConfig.train_layers)
    ap.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--serve", choices=["auto", "llama_cpp", "transformers"], default="auto",
                    help="serving path for the RAC run; auto: the faster one measured")
    ap.add_argument("--work-dir", type=Path, required=True, help="where the GGUF files go")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--compare-only", type=Path, default=None,
                    help="only time the two serving paths of this trained GGUF, alternately")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    labels = load_labels(args.schema)
    names = {x.name for x in labels}
    _, pool = dev_split(load_rows(args.train), labels)
    pool_rows = [LabelledText(t, c) for t, c in pool]
    test = sample_rows(load_rows(args.test), args.limit, 0)
    embedder = SentenceTransformerEmbedder(embedder_model_dir())
    report: dict = {"schema": str(args.schema), "test_items": len(test), "runs": {}}
    if args.out.exists():  # runs already measured are kept (a long bench may be resumed)
        report = json.loads(args.out.read_text())
    if args.compare_only is not None:
        index = LabelIndex.build(labels, embedder)
        few = test[:args.speed_items]
        cands = index.candidates(embedder.embed([t for t, _ in few]), 3)
        questions = [Question(t, index.labels[c.label_id])
                     for (t, _), cs in zip(few, cands, strict=True) for c in cs]
        timings = alternate(args.compare_only, questions, args.threads, args.repeats)
        report["serving_compared_alternately"] = {
            "model": args.compare_only.name, "questions": len(questions), "threads":
            args.threads, "calls_per_second": timings}
        print(json.dumps(timings, indent=1))
        args.out.write_text(json.dumps(report, indent=1))
        return
    config = TrainConfig(epochs=args.epochs, train_layers=args.train_layers,
                         learning_rate=args.learning_rate, seed=args.seed, threads=args.threads)
    params = ClassifyParams(top_k=5, accept_threshold=0.5, cutoff=0.8, strategy="sequential")
    bundled = LlamaCppJudge(n_threads=args.threads)
    for n in [int(x) for x in args.per_label.split(",")]:
        if str(n) in report["runs"]:
            continue
        reviewed = select_examples(pool_rows, n, args.seed) if n else []
        index = reviewed_index(labels, embedder, reviewed)
        examples = schema_examples(labels) + reviewed
        path = args.work_dir / f"banking77-{n}pl.gguf"
        print(f"== {n} reviewed per label: {len(examples)} training items", flush=True)
        trained = train_judge(labels, examples, index, embedder, path, config)
        print(f"trained in {trained.seconds:.0f}s, train AUC {trained.train_auc_before:.3f} "
              f"-> {trained.train_auc_after:.3f}", flush=True)

        # Serving paths on the same questions: the top-3 candidates of the first test items.
        few = test[:args.speed_items]
        cands = index.candidates(embedder.embed([t for t, _ in few]), 3)
        questions = [Question(t, index.labels[c.label_id]) for (t, _), cs in zip(few, cands,
                                                                                   strict=True)
                     for c in cs]
        llama = TrainedLlamaCppJudge(path, model_id=f"llama.cpp:{path.stem}",
                                     n_threads=args.threads)
        torch_judge = TransformersJudge(path, model_id=f"transformers:{path.stem}",
                                        threads=args.threads)
        paths = {"llama_cpp": speed(llama, questions), "transformers": speed(torch_judge,
                                                                            questions),
                 "bundled_llama_cpp": speed(bundled, questions)}
        gold = [g for (_, g), cs in zip(few, cands, strict=True) for _ in cs]
        positives = {k: [p for p, q, g in zip(v["answers"], questions, gold, strict=True)
                         if q.label.name == g] for k, v in paths.items()}
        negatives = {k: [p for p, q, g in zip(v["answers"], questions, gold, strict=True)
                         if q.label.name != g] for k, v in paths.items()}
        agreement = compare(paths["llama_cpp"]["answers"], paths["transformers"]["answers"])
        serve = args.serve
        if serve == "auto":
            serve = max(("llama_cpp", "transformers"),
                        key=lambda k: paths[k]["calls_per_second"])
        print({k: round(v["calls_per_second"], 2) for k, v in paths.items()}, agreement,
              f"serving with {serve}", flush=True)
        judge = llama if serve == "llama_cpp" else torch_judge

        started = time.perf_counter()
        decisions = []
        for start in range(0, len(test), 64):
            chunk = test[start:start + 64]
            decisions += Engine(embedder, judge).classify([t for t, _ in chunk], index, params)
            print(f"  RAC {len(decisions)}/{len(test)}", flush=True)
        seconds = time.perf_counter() - started
        metrics = evaluate([g for _, g in test], decisions, names, seconds=seconds)
        metrics.pop("precision_coverage")
        report["runs"][str(n)] = {
            "reviewed_per_label": n, "training_items": len(examples),
            "training": {**trained.__dict__},
            "serving": {k: {kk: vv for kk, vv in v.items() if kk != "answers"}
                        for k, v in paths.items()},
            "speed_questions": len(questions),
            "speed_auc": {k: mann_whitney_auc(positives[k], negatives[k]) for k in paths},
            "llama_cpp_vs_transformers": agreement, "served_with": serve,
            "rac": metrics,
        }
        print(f"RAC after training: accuracy {metrics['accuracy']:.3f}, judge AUC "
              f"{metrics['judge_auc']}, calls/item {metrics['llm_calls_per_item']:.2f}",
              flush=True)
        llama.close()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
