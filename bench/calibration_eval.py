"""Calibrated confidence on Banking77: is "confidence 0.9" right 90% of the time, and what
coverage does a cutoff chosen for precision 0.95 give on unseen data?

Reviews are simulated on train: a fixed sample of the dev split (bench.common; never reviewed
exemplars) is labelled by the engine and its gold labels play the reviews. On them the calibrator
is fitted (app.rac.calibration.fit, as the service fits it) and the cutoff for the target
precision chosen (choose_cutoff, as GET /v1/schemas/{name}/cutoff does). Then test is labelled
and measured: expected calibration error of the raw confidence (P(yes), or the retrieval score
without a judge) and of the calibrated one, and the precision and coverage the chosen cutoff
really gives. Coverage is the share of all test items labelled at or above the cutoff.

    python bench/calibration_eval.py --schema schemas/banking77.yaml --train train.csv \
        --test test.csv --method retrieval --out bench/results/calibration.json
    python bench/calibration_eval.py ... --method rac --per-label 10 \
        --judge-model judges/banking77-10pl.gguf --limit 500 --out ...
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.cli.files import sample_rows  # noqa: E402
from app.rac import calibration  # noqa: E402
from app.rac.bundled import embedder_model_dir  # noqa: E402
from app.rac.decision import ClassifyParams, Decision  # noqa: E402
from app.rac.embedder import SentenceTransformerEmbedder  # noqa: E402
from app.rac.engine import Engine  # noqa: E402
from app.rac.evaluation import coverage_at_precision, expected_calibration_error  # noqa: E402
from app.rac.index import LabelIndex  # noqa: E402
from app.rac.training import LabelledText, select_examples  # noqa: E402
from bench.common import dev_split, load_labels, load_rows  # noqa: E402


def label_all(engine: Engine, rows: list[tuple[str, str]], index: LabelIndex,
              params: ClassifyParams, what: str) -> list[Decision]:
    decisions: list[Decision] = []
    for start in range(0, len(rows), 64):
        decisions += engine.classify([t for t, _ in rows[start:start + 64]], index, params)
        if params.strategy != "retrieval":
            print(f"  {what}: {len(decisions)}/{len(rows)}", flush=True)
    return decisions


def scored(decisions: list[Decision], rows: list[tuple[str, str]], cal: calibration.Calibrator
           ) -> dict[str, list]:
    """Per item: labelled?, correct?, raw and calibrated confidence (0 when unlabelled)."""
    out: dict[str, list] = {"labelled": [], "correct": [], "raw": [], "calibrated": []}
    for decision, (_, gold) in zip(decisions, rows, strict=True):
        x = calibration.features(decision.trace, decision.label)
        out["labelled"].append(x is not None)
        out["correct"].append(decision.label == gold)
        out["raw"].append(calibration.IDENTITY.confidence(x) if x else 0.0)
        out["calibrated"].append(cal.confidence(x) if x else 0.0)
    return out


def at_cutoff(s: dict[str, list], key: str, cutoff: float | None) -> dict[str, float | None]:
    if cutoff is None:
        return {"cutoff": None, "precision": None, "coverage": 0.0}
    kept = [ok for lab, ok, c in zip(s["labelled"], s["correct"], s[key], strict=True)
            if lab and c >= cutoff]
    return {"cutoff": cutoff, "precision": sum(kept) / len(kept) if kept else None,
            "coverage": len(kept) / len(s["labelled"])}


def ece(s: dict[str, list], key: str) -> float | None:
    pairs = [(c, ok) for lab, ok, c in zip(s["labelled"], s["correct"], s[key], strict=True)
             if lab]
    return expected_calibration_error([c for c, _ in pairs], [ok for _, ok in pairs])


THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)


def replay(decisions: list[Decision], rows: list[tuple[str, str]], threshold: float,
           recorded_at: float) -> dict[str, float]:
    """The sequential rule at a lower accept threshold, replayed on traces recorded at
    `recorded_at`: it stops at or before where the recorded run stopped, so every P(yes) it needs
    was asked, and the replay is exact."""
    assert threshold <= recorded_at
    right = labelled = calls = 0
    for decision, (_, gold) in zip(decisions, rows, strict=True):
        for step in decision.trace:
            if step.p_yes is None:
                break
            calls += 1
            if step.p_yes >= threshold:
                labelled += 1
                right += step.label == gold
                break
    n = len(rows)
    return {"threshold": threshold, "accuracy": right / n, "labelled": labelled / n,
            "calls_per_item": calls / n}


def calibrate_and_cut(dev_decisions: list[Decision], reviews: list[tuple[str, str]],
                      test_decisions: list[Decision], test: list[tuple[str, str]],
                      target: float) -> dict:
    """Fit the calibrator on the reviewed decisions, choose the cutoff for `target` on them (raw
    and calibrated confidence), and measure both on test."""
    x, y = [], []
    for decision, (_, gold) in zip(dev_decisions, reviews, strict=True):
        found = calibration.features(decision.trace, decision.label)
        if found is not None:
            x.append(found)
            y.append(decision.label == gold)
    cal = calibration.fit(x, y, version=1)
    dev_s, test_s = scored(dev_decisions, reviews, cal), scored(test_decisions, test, cal)
    out: dict = {
        "reviewed_decisions": len(y), "accuracy_test": sum(test_s["correct"]) / len(test),
        "fit": {"ece_before_cv": cal.ece_before, "ece_after_cv": cal.ece_after,
                "weights": cal.weights},
        "ece_test": {"raw": ece(test_s, "raw"), "calibrated": ece(test_s, "calibrated")},
    }
    for key in ("raw", "calibrated"):
        lab = dev_s["labelled"]
        choice = calibration.choose_cutoff(
            [c for c, ok in zip(dev_s[key], lab, strict=True) if ok],
            [ok for ok, lb in zip(dev_s["correct"], lab, strict=True) if lb], target)
        out[f"cutoff_{key}"] = {
            "chosen_on_reviews": {"cutoff": choice.cutoff, "precision": choice.precision,
                                  "interval": choice.interval, "support": choice.support,
                                  "reason": choice.reason},
            "on_test": at_cutoff(test_s, key, choice.cutoff),
            "best_possible_on_test": coverage_at_precision(
                test_s["correct"], test_s["labelled"], test_s[key], target),
        }
    return out


def at_threshold(decisions: list[Decision], threshold: float) -> list[Decision]:
    """The decisions the sequential rule makes at a lower accept threshold (see `replay`):
    questions it would not have asked lose their answer."""
    out = []
    for decision in decisions:
        trace, chosen, stopped = [], None, False
        for step in decision.trace:
            asked = not stopped and step.p_yes is not None
            accepted = asked and step.p_yes >= threshold  # type: ignore[operator]
            trace.append(replace(step, p_yes=step.p_yes if asked else None, accepted=accepted))
            if accepted:
                chosen, stopped = step.label, True
            elif not asked:
                stopped = True
        out.append(replace(decision, label=chosen, labels=[chosen] if chosen else [],
                           trace=trace, status="needs_review" if chosen else "no_match"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=Path, required=True)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--method", choices=["retrieval", "rac"], required=True)
    ap.add_argument("--per-label", type=int, default=0,
                    help="reviewed pool items per label in the index as exemplars")
    ap.add_argument("--judge-model", type=Path, default=None,
                    help="a trained judge (GGUF from rac judge train / judge_training.py); "
                         "default: the bundled judge")
    ap.add_argument("--backend", choices=["llama_cpp", "transformers"], default=None,
                    help="serving path of --judge-model [default: the service's]")
    ap.add_argument("--dev-size", type=int, default=1000)
    ap.add_argument("--limit", type=int, default=None, help="test sample (seed 0)")
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", default=None, help="key of this run in --out")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)  # the embedder too: spinning threads on shared cores
    labels = load_labels(args.schema)
    dev, pool = dev_split(load_rows(args.train), labels)
    reviews = sorted(random.Random(0).sample(dev, args.dev_size), key=dev.index)
    test = sample_rows(load_rows(args.test), args.limit, 0)
    embedder = SentenceTransformerEmbedder(embedder_model_dir())
    index = LabelIndex.build(labels, embedder)
    reviewed = select_examples([LabelledText(t, c) for t, c in pool], args.per_label, 0) \
        if args.per_label else []
    if reviewed:
        index.add_exemplars([f"r{i}" for i in range(len(reviewed))],
                            embedder.embed([r.text for r in reviewed]),
                            [r.label for r in reviewed])
    judge = None
    if args.method == "rac":
        if args.judge_model is not None:
            from app.rac.judges.trained import SERVING_BACKEND, load_trained_judge

            judge = load_trained_judge(args.judge_model, model_id=args.judge_model.stem,
                                       threads=args.threads,
                                       backend=args.backend or SERVING_BACKEND)
        else:
            from app.rac.judges.llama_cpp import LlamaCppJudge

            judge = LlamaCppJudge(n_threads=args.threads)
    params = ClassifyParams(top_k=args.top_k, accept_threshold=0.5,
                            strategy="sequential" if judge else "retrieval")
    engine = Engine(embedder, judge)
    started = time.perf_counter()
    dev_decisions = label_all(engine, reviews, index, params, "reviews (dev)")
    test_decisions = label_all(engine, test, index, params, "test")
    seconds = time.perf_counter() - started

    run: dict = {
        "method": args.method, "per_label": args.per_label,
        "judge": judge.model_id if judge else None,
        "prompt_version": judge.prompt_version if judge else None,
        "reviews": len(reviews), "test_items": len(test), "seconds": seconds,
        "accept_threshold": params.accept_threshold if judge else None,
        **calibrate_and_cut(dev_decisions, reviews, test_decisions, test, args.target),
    }
    if judge is not None:
        # Which accept threshold suits this judge? Chosen on the reviews (dev), shown on test,
        # and the calibration redone on the decisions at that threshold.
        grid = [t for t in THRESHOLDS if t <= params.accept_threshold]
        on_dev = [replay(dev_decisions, reviews, t, params.accept_threshold) for t in grid]
        best = max(on_dev, key=lambda r: (r["accuracy"], r["threshold"]))["threshold"]
        run["accept_threshold_replay"] = {
            "dev": on_dev, "chosen_on_dev": best,
            "test": [replay(test_decisions, test, t, params.accept_threshold) for t in grid],
            "at_chosen": calibrate_and_cut(at_threshold(dev_decisions, best), reviews,
                                           at_threshold(test_decisions, best), test,
                                           args.target)}
    name = args.name or f"{args.method}-{args.per_label}pl"
    report = json.loads(args.out.read_text()) if args.out.exists() else {}
    report[name] = run
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    cut = run["cutoff_calibrated"]
    print(f"{name}: accuracy {run['accuracy_test']:.3f}; ECE test raw "
          f"{run['ece_test']['raw']:.3f} -> calibrated {run['ece_test']['calibrated']:.3f}; "
          f"cutoff {cut['chosen_on_reviews']['cutoff']} for precision {args.target}: on test "
          f"precision {cut['on_test']['precision']}, coverage {cut['on_test']['coverage']:.3f} "
          f"(best possible {cut['best_possible_on_test']['coverage']:.3f})")


if __name__ == "__main__":
    main()
