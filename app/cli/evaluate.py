"""`rac eval`: label a CSV with gold labels through the engine and report every metric.

The engine is called exactly as the service calls it (`Engine.classify` on chunks of items, so
questions are batched across the items of a chunk); nothing here re-implements a step. The report
carries the parameters, the model ids and the prompt version, so a number can be reproduced.

Latency per item is the wall time of the item's chunk divided by the chunk's size (items of a
chunk are answered together); `--batch-size 1` measures true one-at-a-time latency.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from app.cli.eval_report import plot_curve, summary
from app.cli.files import file_sha256, load_rows, load_schema, sample_rows
from app.errors import InvalidInput
from app.rac.calibration import with_items_reference
from app.rac.decision import ClassifyParams, Decision, Strategy
from app.rac.engine import Engine
from app.rac.evaluation import DEFAULT_CUTOFFS, evaluate, is_correct, labelled_curve
from app.rac.judges.caching import CachingJudge, unwrapped
from app.rac.prompts import LabelInfo

METHODS = ("cascade", "rac", "retrieval", "all-in-prompt")
# `rac eval --strategy` speaks the vocabulary of `rac label`, jobs and the API (one word for how an
# item is labelled), plus the all-in-prompt baseline; it maps onto run_eval's method + RAC variant.
EVAL_STRATEGIES = {"cascade": ("cascade", "sequential"), "sequential": ("rac", "sequential"),
                   "window": ("rac", "window"), "retrieval": ("retrieval", "sequential"),
                   "all-in-prompt": ("all-in-prompt", "sequential")}


def strategy_from_method(method: str, rac_variant: str | None) -> str:
    """The old `--method` spelling (still accepted, hidden) -> the `--strategy` it means."""
    if method == "rac":
        return rac_variant if rac_variant in ("sequential", "window") else "sequential"
    return method


def held_out_labels(labels: list[LabelInfo], n: int) -> list[str]:
    """A fixed, documented out-of-scope choice: every (len // n)-th label in schema order
    (positions 0, 7, 14, ... for 10 of Banking77's 77), dropped from the schema so their items
    belong to none of the remaining labels."""
    if n <= 0:
        return []
    step = max(1, len(labels) // n)
    return [labels[i].name for i in range(0, step * n, step) if i < len(labels)]


def _make_judge():  # type: ignore[no-untyped-def]
    """The service's own (process-wide, shared) judge, so eval runs what the service runs.
    It is shared: never close it here."""
    from app.config import get_settings
    from app.runtime import make_judge

    settings = get_settings()
    return make_judge(settings.llm, settings.data_dir)


def _chunks(n: int, size: int) -> list[range]:
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


def run_eval(*, schema: Path, data: Path, text_col: str, label_col: str, method: str,
             top_k: int, accept_threshold: float | None, cutoff: float, strategy: str,
             window: int, limit: int | None, seed: int, batch_size: int,
             judge_cache: Path | None = None, progress: bool = True,
             target_precision: float | None = 0.95, calibrate: bool = True,
             out_of_scope: int = 0, reviews: Path | None = None,
             reviews_per_label: int = 0, cutoff_from: str = "calibrator") -> dict[str, Any]:
    from tqdm import tqdm

    from app.config import get_settings
    from app.rac.embedder import SentenceTransformerEmbedder
    from app.rac.index import LabelIndex

    name, multi_label, labels, schema_hash = load_schema(schema)
    dropped = held_out_labels(labels, out_of_scope)
    labels = [x for x in labels if x.name not in dropped]
    all_rows = load_rows(data, text_col, label_col)
    rows = sample_rows(all_rows, limit, seed)
    if not rows:
        raise InvalidInput(f"{data.name} has no rows")
    texts = [t for t, _ in rows]
    golds = [g for _, g in rows]
    settings = get_settings()
    threshold = settings.engine.accept_threshold if accept_threshold is None else accept_threshold

    report: dict[str, Any] = {
        "method": method,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "schema": {"file": schema.name, "name": name, "labels": len(labels),
                   "content_hash": schema_hash, "multi_label": multi_label},
        "data": {"file": data.name, "sha256": file_sha256(data), "rows": len(all_rows),
                 "text_col": text_col, "label_col": label_col},
        "sample": {"limit": limit, "seed": seed, "n": len(rows)},
        "out_of_scope_labels": dropped,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
    }
    decisions: list[Decision] = []
    latencies: list[float] = []
    bar = tqdm(total=len(rows), unit="item", disable=not progress, file=sys.stderr,
               desc=method)

    if method == "all-in-prompt":
        from app.rac.all_in_prompt import AllInPromptClassifier
        from app.runtime import judge_model_path

        built = time.perf_counter()
        classifier = AllInPromptClassifier(labels, judge_model_path(settings.llm,
                                                                     settings.data_dir),
                                           n_threads=settings.llm.n_threads, cutoff=cutoff)
        setup_seconds = time.perf_counter() - built
        report["params"] = {"cutoff": cutoff, "n_ctx": classifier.n_ctx}
        report["models"] = {"llm": classifier.model_id}
        report["prompt_version"] = classifier.prompt_version
        report["all_in_prompt"] = {"labels_in_prompt": classifier.fit.labels_in_prompt,
                                   "labels_total": classifier.fit.labels_total,
                                   "truncated": classifier.fit.truncated,
                                   "prefix_tokens": classifier.fit.prompt_tokens}
        started = time.perf_counter()
        for text in texts:  # one at a time: the model answers items in sequence anyway
            t0 = time.perf_counter()
            decisions.extend(classifier.classify([text]))
            latencies.append(time.perf_counter() - t0)
            bar.update(1)
        seconds = time.perf_counter() - started
        judge_seconds = seconds
        classifier.close()
    else:
        from app.runtime import embedder_model_path

        embedder = SentenceTransformerEmbedder(
            embedder_model_path(settings.embedder, settings.data_dir),
            batch_size=settings.embedder.batch_size)
        judge = _make_judge() if method in ("rac", "cascade") else None
        if judge is not None and judge_cache is not None:
            judge = CachingJudge(judge, judge_cache)
        chosen: Strategy = "retrieval" if method == "retrieval" else "cascade" if (
            method == "cascade") else ("window" if strategy == "window" else "sequential")
        params = ClassifyParams(top_k=top_k, accept_threshold=threshold, cutoff=cutoff,
                                target_precision=target_precision if calibrate else None,
                                strategy=chosen, window=window, multi_label=multi_label)
        built = time.perf_counter()
        index = LabelIndex.build(labels, embedder)
        calibrator = None
        if calibrate:  # what the service does before any review: the prior from the schema
            from app.rac.prior import fit_prior

            calibrator = fit_prior(index, top_k, judge if method == "cascade" else None,
                                   target_precision or 0.95)
        if reviews is not None and reviews_per_label:
            calibrator = _apply_reviews(Engine(embedder, judge), index, params, calibrator,
                                        reviews, text_col, label_col, reviews_per_label, seed)
            report["reviews"] = {"file": reviews.name, "per_label": reviews_per_label,
                                 "n": calibrator.n_reviews}
        engine = Engine(embedder, judge)
        vectors = None
        if cutoff_from == "items" and calibrator is not None:
            # the cutoff read from the items' own confidences before the judge (one retrieval
            # pass over all of them; the labelling pass below reuses their vectors)
            vectors = embedder.embed(texts)
            calibrator = with_items_reference(calibrator, [
                calibrator.confidence_for(trace, trace[0].label) if trace else 0.0
                for trace in ([c.trace_step() for c in cands]
                              for cands in engine.retrieve(texts, index, top_k, vectors))])
        if calibrator is not None:
            report["calibrator"] = calibrator.to_json()
            report["calibrator"].pop("reference")
        report["cutoff_from"] = cutoff_from
        setup_seconds = time.perf_counter() - built
        judge_seconds_before = unwrapped(judge).stats.seconds if judge else 0.0
        report["params"] = {k: v for k, v in vars(params).items()}
        report["params"]["batch_size"] = batch_size
        report["models"] = {"embedder": embedder.model_id,
                            "judge": judge.model_id if judge else None}
        report["prompt_version"] = judge.prompt_version if judge else None
        started = time.perf_counter()
        for chunk in _chunks(len(texts), batch_size):
            t0 = time.perf_counter()
            decisions.extend(engine.classify(
                [texts[i] for i in chunk], index, params, calibrator=calibrator,
                vectors=None if vectors is None else vectors[chunk.start:chunk.stop]))
            per_item = (time.perf_counter() - t0) / len(chunk)
            latencies.extend([per_item] * len(chunk))
            bar.update(len(chunk))
        seconds = time.perf_counter() - started
        # Only questions the model really answered (not cache hits) count towards its speed.
        judge_seconds = (unwrapped(judge).stats.seconds - judge_seconds_before) if judge else 0.0
        if isinstance(judge, CachingJudge):
            report["judge_cache"] = {"hits": judge.hits, "asked": judge.inner.stats.calls,
                                     "timings_valid": judge.hits == 0}
            judge.close()
    bar.close()

    metrics = evaluate(golds, decisions, [x.name for x in labels], seconds=seconds,
                       latencies=latencies, cutoffs=DEFAULT_CUTOFFS)
    calls = sum(d.judge_calls for d in decisions)
    answered = report.get("judge_cache", {}).get("asked", calls)  # not counting cache hits
    metrics["setup_seconds"] = setup_seconds
    metrics["llm_calls"] = calls
    metrics["llm_seconds"] = judge_seconds
    metrics["llm_calls_per_second"] = (answered / judge_seconds if answered and judge_seconds
                                       else None)
    metrics["llm_time_share"] = judge_seconds / seconds if seconds and calls else None
    metrics["status_counts"] = {s: sum(d.status == s for d in decisions)
                                for s in ("accepted", "needs_review", "no_match")}
    metrics["auto_accepted"] = _auto_accepted(golds, decisions, {x.name for x in labels})
    if dropped:
        metrics["out_of_scope"] = _out_of_scope(golds, decisions, {x.name for x in labels})
    report["metrics"] = metrics
    report["curve"] = _curve(golds, decisions, {x.name for x in labels})
    return report


def _apply_reviews(engine: Engine, index: Any, params: ClassifyParams, prior: Any,
                   reviews: Path, text_col: str, label_col: str, per_label: int,
                   seed: int) -> Any:
    """What the service does with reviewed items: `per_label` rows per schema label of the
    `reviews` CSV (a fixed random sample) are classified first as the model would (with the
    prior), then become exemplars of their labels in the index, and the calibrator is fitted
    on them decided again without their own exemplar (app/rac/review_probes.py), as `rac`
    refits it after 30 reviews (app/calibration/service.py). No learnt scorer."""
    import random

    from app.rac import calibration
    from app.rac.review_probes import refit_rows

    rows = load_rows(reviews, text_col, label_col)
    random.Random(seed).shuffle(rows)
    taken: dict[str, list[str]] = {}
    for text, gold in rows:
        if gold in index.label_ids and len(taken.setdefault(gold, [])) < per_label:
            taken[gold].append(text)
    pairs = [(text, gold) for gold, texts in taken.items() for text in texts]
    golds = [gold for _, gold in pairs]
    vectors = engine.embedder.embed([t for t, _ in pairs])
    decided = engine.classify([t for t, _ in pairs], index, params, vectors=vectors,
                              calibrator=prior)
    keys = [f"review-{i}" for i in range(len(pairs))]
    index.add_exemplars(keys, vectors, golds)
    x, y = refit_rows(index, keys, [d.trace for d in decided], [d.label for d in decided],
                      golds, params.top_k)
    return calibration.fit(x, y, version=1)


def _auto_accepted(golds: list[str], decisions: list[Decision], names: set[str]
                   ) -> dict[str, Any]:
    """The decisions accepted without review at the run's cutoff, and how many are right."""
    from app.rac.evaluation import is_correct

    accepted = [is_correct(g, d.label, names) for g, d in zip(golds, decisions, strict=True)
                if d.status == "accepted"]
    cutoffs = {d.cutoff for d in decisions}
    return {"share": len(accepted) / len(golds) if golds else 0.0,
            "precision": sum(accepted) / len(accepted) if accepted else None,
            "cutoff": cutoffs.pop() if len(cutoffs) == 1 else None,
            "target_precision": decisions[0].target_precision if decisions else None}


def _out_of_scope(golds: list[str], decisions: list[Decision], names: set[str]
                  ) -> dict[str, Any]:
    """Items whose gold label was held out of the schema: how many were accepted anyway (each
    one a wrong label nobody checks), sent to review, or given no label; and the in-scope
    items' coverage at precision 0.95, to compare with the full schema."""
    from app.rac.evaluation import coverage_at_precision, is_correct

    oos = [d for g, d in zip(golds, decisions, strict=True) if g not in names]
    inside = [(g, d) for g, d in zip(golds, decisions, strict=True) if g in names]

    def share(status: str) -> float | None:
        return sum(d.status == status for d in oos) / len(oos) if oos else None

    correct = [is_correct(g, d.label, names) for g, d in inside]
    return {"rows": len(oos), "accepted_share": share("accepted"),
            "needs_review_share": share("needs_review"), "no_match_share": share("no_match"),
            "in_scope_rows": len(inside),
            "in_scope_auto_accepted": _auto_accepted([g for g, _ in inside],
                                                     [d for _, d in inside], names),
            "in_scope_coverage_at_0.95": coverage_at_precision(
                correct, [d.label is not None for _, d in inside],
                [d.confidence for _, d in inside], 0.95)["coverage"]}


def _curve(golds: list[str], decisions: list[Decision], names: set[str]) -> list[list[float]]:
    """(coverage, precision) after each distinct confidence, most confident first: the full
    precision-coverage curve, for plotting."""
    curve = labelled_curve([is_correct(g, d.label, names) for g, d in
                            zip(golds, decisions, strict=True)],
                           [d.label is not None for d in decisions],
                           [d.confidence for d in decisions])
    return [[p.coverage, p.precision] for p in curve]


@click.command("eval")
@click.option("--schema", "schema", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="label schema FILE (YAML or JSON; local, no server)")
@click.option("--data", "data", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV with a text column and a gold label column")
@click.option("--text-column", "--text-col", "text_col", default="text", show_default=True,
              help="the column holding the text")
@click.option("--label-column", "--label-col", "label_col", default="label",
              show_default=True, help="the column holding the gold label (Banking77: category)")
@click.option("--strategy", type=click.Choice(list(EVAL_STRATEGIES)), default=None,
              help="as in `rac label` and the API: cascade (the service default: retrieval, "
                   "the judge only where it can change the outcome), sequential or window "
                   "(RAC: the judge asked about every item), retrieval (top retrieved label, no "
                   "LLM); plus all-in-prompt (every label in one prompt, the naive baseline) "
                   "[default: cascade]")
@click.option("--method", type=click.Choice(METHODS), default=None, hidden=True,
              help="the old spelling: cascade, rac (with --strategy sequential|window), "
                   "retrieval, all-in-prompt")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--accept-threshold", type=click.FloatRange(0, 1), default=None,
              help="P(yes) to accept a candidate [default: the engine setting]")
@click.option("--cutoff", type=click.FloatRange(0, 1), default=0.8, show_default=True,
              help="confidence at or above which a label needs no review")
@click.option("--window", default=3, show_default=True, type=click.IntRange(1, 100))
@click.option("--limit", type=click.IntRange(1), default=None,
              help="evaluate a fixed random sample of this many rows")
@click.option("--seed", default=0, show_default=True, type=int, help="seed of the --limit sample")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1),
              help="items per Engine.classify call")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="write the JSON report here")
@click.option("--plot", "plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="draw the precision-coverage curve to this image (PNG)")
@click.option("--judge-cache", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON file of judge answers to reuse across runs (sweeps); timings of a run "
                   "with cache hits are not meaningful")
@click.option("--target-precision", type=click.FloatRange(0.5, 0.999), default=0.95,
              show_default=True, help="precision wanted of auto-accepted labels: the "
              "calibrator turns it into the cutoff (as the service does)")
@click.option("--calibrate/--no-calibrate", default=True, show_default=True,
              help="calibrate confidence with the prior fitted on the schema's examples (the "
                   "service's behaviour before any review); --no-calibrate: raw confidence "
                   "and --cutoff")
@click.option("--out-of-scope", type=click.IntRange(0), default=0, show_default=True,
              help="drop this many labels from the schema (every len/N-th) so their rows "
                   "are out of scope, and report how they are handled")
@click.option("--reviews", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="CSV of reviewed items (same columns), e.g. a train split")
@click.option("--reviews-per-label", type=click.IntRange(0), default=0, show_default=True,
              help="take this many --reviews rows per label as reviewed items: exemplars in "
                   "the index and the calibrator fitted on them, as the service does")
@click.option("--cutoff-from", type=click.Choice(["calibrator", "items"]), default="calibrator",
              show_default=True, help="where a target precision's cutoff is read from: the "
              "calibrator's own reference (the schema's probes or the reviews, as the service "
              "does) or the evaluated items' confidences (no gold label used)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def eval_command(schema: Path, data: Path, text_col: str, label_col: str, method: str | None,
                 top_k: int, accept_threshold: float | None, cutoff: float, strategy: str | None,
                 window: int, limit: int | None, seed: int, batch_size: int, out: Path,
                 plot: Path | None, judge_cache: Path | None, target_precision: float,
                 calibrate: bool, out_of_scope: int, reviews: Path | None,
                 reviews_per_label: int, cutoff_from: str, quiet: bool) -> None:
    """Evaluate a labelling strategy on a CSV with gold labels (see docs/results.md)."""
    if method is not None:
        strategy = strategy_from_method(method, strategy)
    method, rac_variant = EVAL_STRATEGIES[strategy or "cascade"]
    report = run_eval(schema=schema, data=data, text_col=text_col, label_col=label_col,
                      method=method, top_k=top_k, accept_threshold=accept_threshold,
                      cutoff=cutoff, strategy=rac_variant, window=window, limit=limit,
                      seed=seed,
                      batch_size=batch_size, judge_cache=judge_cache, progress=not quiet,
                      target_precision=target_precision, calibrate=calibrate,
                      out_of_scope=out_of_scope, reviews=reviews,
                      reviews_per_label=reviews_per_label, cutoff_from=cutoff_from)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    if plot is not None:
        plot.parent.mkdir(parents=True, exist_ok=True)
        plot_curve(report, plot)
    click.echo(summary(report))
    click.echo(f"report written to {out}" + (f", curve to {plot}" if plot else ""))
