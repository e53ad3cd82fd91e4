"""The learnt scorer against today's retrieval rule on Banking77, as reviews accumulate.

Review is simulated as in bench/learning_curve.py: n items per label of the pool (train outside
the dev split, bench.common) are reviewed, join the label index as exemplars, and the scorer
(app/rac/scorer.py) is fitted on the index, timed, twice: on the index alone (`learnt`) and, as
the service fits it, with the rest of the pool as the schema's unreviewed items whose labels are
propagated from the reviews (`unlabelled`; never dev or test items). Each round reports, for
retrieval alone and retrieval re-ranked by each scorer: accuracy, and with a calibrator fitted
on 1,000 dev items (the reviews of the calibration, as bench/calibration_eval.py) the test ECE
and the precision and coverage at the cutoff chosen for precision 0.95.

`--tune` runs a small grid of the scorer's C and BLEND on the dev split instead (train only;
with `--per-label`, at those counts over a wider grid, e.g. `--per-label all`);
`--tune-unlabelled` a grid of the propagation's K and ALPHA and the unlabelled items' weight.
`--order` compares review orders: rounds of 77 reviews drawn from the pool either least
confident first (the review queue's order; the model refitted after every round, with the
unreviewed rest of the pool) or at random (same seed), with test accuracy after 385 and 770
reviews.

`--embedder-path DIR` runs any of these with another sentence-transformers model than the
bundled MiniLM (e.g. all-mpnet-base-v2, as the service's RAC_EMBEDDER__MODEL_PATH); the vectors
cached by `--cache-dir` are keyed by the model's id, so models never share them. `--per-label`
picks the test table's rows (the reviews of a row do not depend on the others). `--throughput N`
first times embedding the same N test texts with the bundled model and then with the chosen one,
back to back, one torch thread each.

    python bench/learnt_scorer.py --schema schemas/banking77.yaml --train train.csv \
        --test test.csv --out bench/results/learnt_scorer.json [--tune | --order] \
        [--embedder-path DIR] [--per-label 5 10 20 all] [--throughput 500] \
        [--cache-dir DIR]   # keeps the item embeddings between runs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.rac import propagation  # noqa: E402
from app.rac.bundled import embedder_model_dir  # noqa: E402
from app.rac.decision import ClassifyParams, Decision  # noqa: E402
from app.rac.embedder import Embedder, SentenceTransformerEmbedder  # noqa: E402
from app.rac.engine import Engine  # noqa: E402
from app.rac.index import LabelIndex  # noqa: E402
from app.rac.prompts import LabelInfo  # noqa: E402
from app.rac.scorer import BLEND, UNLABELLED_WEIGHT, C, LearntScorer, fit_scorer  # noqa: E402
from app.rac.training import LabelledText, select_examples  # noqa: E402
from bench.calibration_eval import calibrate_and_cut  # noqa: E402
from bench.common import dev_split, load_labels, load_rows  # noqa: E402

ROUNDS = (0, 1, 2, 5, 10, 20, None)  # None: all of the pool
RETRIEVAL = ClassifyParams(top_k=5, strategy="retrieval")
ORDER_BATCH = 77
ORDER_STOPS = (385, 770)


def embed_cached(embedder: Embedder, texts: list[str], cache_dir: Path | None) -> np.ndarray:
    if cache_dir is None:
        return embedder.embed(texts)
    key = hashlib.sha256("\n".join([embedder.model_id, *texts]).encode()).hexdigest()[:16]
    path = cache_dir / f"vectors-{key}.npy"
    if path.exists():
        return np.load(path)
    vectors = embedder.embed(texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


class Setup:
    """The schema, the data and their embeddings, computed once."""

    def __init__(self, args: argparse.Namespace, pool_per_label: int | None = None,
                 dev_only: bool = False) -> None:
        """`pool_per_label`: embed only the pool rows that n per label would review (the rest
        stay zero vectors): what a run that never reviews more needs, in a fraction of the
        time on a loaded machine."""
        self.labels: list[LabelInfo] = load_labels(args.schema)
        self.names = {x.name for x in self.labels}
        dev, pool = dev_split(load_rows(args.train), self.labels)
        self.dev, self.pool = dev, pool
        self.test = load_rows(args.test)
        self.row_of = {(t, c): i for i, (t, c) in enumerate(pool)}
        # another sentence-transformers model than the bundled one (bench/scorer_candidates.py)
        self.embedder = SentenceTransformerEmbedder(getattr(args, "embedder_path", None)
                                                    or embedder_model_dir())
        cache = args.cache_dir
        self.dev_vectors = embed_cached(self.embedder, [t for t, _ in dev], cache)
        if pool_per_label is None:
            self.pool_vectors = embed_cached(self.embedder, [t for t, _ in pool], cache)
        else:
            rows = _reviewed(self, pool_per_label)
            self.pool_vectors = np.zeros((len(pool), self.embedder.dim), dtype=np.float32)
            self.pool_vectors[rows] = embed_cached(self.embedder, [pool[i][0] for i in rows],
                                                   cache)
        self.test_vectors = (np.zeros((len(self.test), self.embedder.dim), dtype=np.float32)
                             if dev_only else  # tuning on train never looks at test
                             embed_cached(self.embedder, [t for t, _ in self.test], cache))
        self.schema_index = LabelIndex.build(self.labels, self.embedder)
        self.engine = Engine(self.embedder, None)
        # the calibration reviews: 1,000 dev items (as bench/calibration_eval.py)
        self.cal_rows = sorted(random.Random(0).sample(range(len(dev)), 1000))

    def index_with(self, reviewed: list[int]) -> LabelIndex:
        base = self.schema_index
        index = LabelIndex(base.labels, base.model_id, base._profiles, base._profile_hashes,
                           base._examples, base._owner, base._example_hashes)
        if reviewed:
            index.add_exemplars([str(i) for i in reviewed], self.pool_vectors[reviewed],
                                [self.pool[i][1] for i in reviewed])
        return index

    def label(self, vectors: np.ndarray, index: LabelIndex,
              scorer: LearntScorer | None) -> list[Decision]:
        return self.engine.classify([""] * len(vectors), index, RETRIEVAL, vectors=vectors,
                                    scorer=scorer)

    def accuracy(self, decisions: list[Decision], rows: list[tuple[str, str]]) -> float:
        return sum(d.label == g for d, (_, g) in zip(decisions, rows, strict=True)) / len(rows)

    def accuracy_of(self, labels: list[str | None]) -> float:
        """Test accuracy of one label per test item."""
        return sum(x == g for x, (_, g) in zip(labels, self.test, strict=True)) / len(self.test)


def measure(s: Setup, index: LabelIndex, scorer: LearntScorer | None) -> dict:
    """Accuracy, throughput and calibrated coverage on test for one ranking."""
    started = time.perf_counter()
    test_decisions = s.label(s.test_vectors, index, scorer)
    seconds = time.perf_counter() - started
    dev_rows = [s.dev[i] for i in s.cal_rows]
    dev_decisions = s.label(s.dev_vectors[s.cal_rows], index, scorer)
    cut = calibrate_and_cut(dev_decisions, dev_rows, test_decisions, s.test, 0.95)
    on_test = cut["cutoff_calibrated"]["on_test"]
    return {"accuracy": s.accuracy(test_decisions, s.test),
            "items_per_second": len(s.test) / seconds,
            "ece_calibrated": cut["ece_test"]["calibrated"], "ece_raw": cut["ece_test"]["raw"],
            "precision_at_cutoff_095": on_test["precision"],
            "coverage_at_cutoff_095": on_test["coverage"]}


def curve(s: Setup, rounds: tuple[int | None, ...] = ROUNDS,
          done: Callable[[dict], None] | None = None) -> dict:
    """The test table; `done` is called with the rows so far after each row."""
    out: dict = {}
    for n in rounds:
        reviewed = _reviewed(s, n)
        index = s.index_with(reviewed)
        scorer = fit_scorer(index, version=1)
        pool = unreviewed(s, reviewed)
        semi = fit_scorer(index, version=1, unlabelled=pool)
        key = "all" if n is None else str(n)
        out[key] = {"reviewed": len(reviewed), "unlabelled_pool": len(pool),
                    "refit_seconds": scorer.fit_seconds,
                    "refit_seconds_unlabelled": semi.fit_seconds,
                    "load_average": os.getloadavg(),
                    "today": measure(s, index, None), "learnt": measure(s, index, scorer),
                    "unlabelled": measure(s, index, semi)}
        print(key, json.dumps(out[key]), flush=True)
        if done is not None:
            done(out)
    return out


def embedding_throughput(paths: list[Path], texts: list[str]) -> list[dict]:
    """Items/s of embedding the same texts with each model in turn, one torch thread each
    (each model loaded and warmed up on a few texts first)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = []
        for path in paths:
            embedder = SentenceTransformerEmbedder(path)
            embedder.embed(texts[:8])
            started = time.perf_counter()
            embedder.embed(texts)
            seconds = time.perf_counter() - started
            out.append({"model_id": embedder.model_id, "texts": len(texts), "seconds": seconds,
                        "items_per_second": len(texts) / seconds,
                        "load_average": os.getloadavg()})
            print("throughput", json.dumps(out[-1]), flush=True)
            del embedder
        return out
    finally:
        torch.set_num_threads(threads)


def _per_label(value: str) -> int | None:
    return None if value == "all" else int(value)


def unreviewed(s: Setup, reviewed: list[int]) -> np.ndarray:
    """The pool's vectors but the reviewed ones: the items a service holds unreviewed."""
    keep = np.ones(len(s.pool), dtype=bool)
    keep[reviewed] = False
    return s.pool_vectors[keep]


def _reviewed(s: Setup, n: int | None) -> list[int]:
    if n == 0:
        return []
    chosen = select_examples([LabelledText(t, c) for t, c in s.pool], n, 0)
    return [s.row_of[(r.text, r.label)] for r in chosen]


TUNE_COUNTS = (5, 10, 20)
TUNE_C = (3.0, 10.0, 30.0)
TUNE_BLEND = (0.05, 0.1, 0.2)


def tune(s: Setup, counts: tuple[int | None, ...] = TUNE_COUNTS,
         cs: tuple[float, ...] = TUNE_C, blends: tuple[float, ...] = TUNE_BLEND) -> dict:
    """Dev accuracy over a small grid, at 5, 10 and 20 reviewed per label (train only)."""
    out: dict = {}
    for n in counts:
        index = s.index_with(_reviewed(s, n))
        row = {"today": s.accuracy(s.label(s.dev_vectors, index, None), s.dev)}
        for c in cs:
            fitted = fit_scorer(index, version=1, c=c)
            for blend in blends:
                scorer = replace(fitted, blend=blend)
                row[f"C={c:g} blend={blend:g}"] = s.accuracy(s.label(s.dev_vectors, index,
                                                                     scorer), s.dev)
        out["all" if n is None else str(n)] = row
        print(n, json.dumps(row), flush=True)
    return out


def tune_unlabelled(s: Setup) -> dict:
    """Dev accuracy of the scorer fitted with the unreviewed pool, over the propagation's
    neighbours K, its ALPHA and the unlabelled items' weight (train only)."""
    out: dict = {}
    defaults = propagation.K, propagation.ALPHA
    try:
        for n in (5, 10, 20):
            reviewed = _reviewed(s, n)
            index = s.index_with(reviewed)
            pool = unreviewed(s, reviewed)
            row: dict = {"today": s.accuracy(s.label(s.dev_vectors, index, None), s.dev),
                         "learnt": s.accuracy(s.label(s.dev_vectors, index,
                                                      fit_scorer(index, version=1)), s.dev)}
            for k in (10, 20):
                for alpha in (0.8, 0.9, 0.99):
                    propagation.K, propagation.ALPHA = k, alpha
                    for weight in (0.3, 1.0):
                        scorer = fit_scorer(index, version=1, unlabelled=pool,
                                            unlabelled_weight=weight)
                        row[f"K={k} alpha={alpha:g} weight={weight:g}"] = {
                            "accuracy": s.accuracy(s.label(s.dev_vectors, index, scorer), s.dev),
                            "fit_seconds": scorer.fit_seconds}
            out[str(n)] = row
            print(n, json.dumps(row), flush=True)
    finally:
        propagation.K, propagation.ALPHA = defaults
    return out


def order(s: Setup, seed: int = 0) -> dict:
    """Queue order (least confident first, refitted after every round) against random order."""
    out: dict = {}
    for name in ("queue", "random"):
        rng = random.Random(seed)
        reviewed: list[int] = []
        remaining = list(range(len(s.pool)))
        rng.shuffle(remaining)  # ties (and the random order) broken by the same seed
        index, scorer = s.index_with([]), None
        rows = {}
        while len(reviewed) < max(ORDER_STOPS):
            if name == "queue":
                decisions = s.label(s.pool_vectors[remaining], index, scorer)
                by_confidence = np.argsort([d.confidence for d in decisions], kind="stable")
                batch = [remaining[i] for i in by_confidence[:ORDER_BATCH]]
            else:
                batch = remaining[:ORDER_BATCH]
            taken = set(batch)
            remaining = [i for i in remaining if i not in taken]
            reviewed += batch
            index = s.index_with(reviewed)
            # as the service fits it: the not yet reviewed rest of the pool is the unlabelled pool
            scorer = fit_scorer(index, version=len(reviewed),
                                unlabelled=s.pool_vectors[remaining])
            if len(reviewed) in ORDER_STOPS:
                rows[str(len(reviewed))] = {
                    "today": s.accuracy(s.label(s.test_vectors, index, None), s.test),
                    "learnt": s.accuracy(s.label(s.test_vectors, index, scorer), s.test),
                    "refit_seconds": scorer.fit_seconds,
                    "labels_covered": len({s.pool[i][1] for i in reviewed})}
                print(name, len(reviewed), json.dumps(rows[str(len(reviewed))]), flush=True)
        out[name] = rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=Path, required=True)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--embedder-path", type=Path, default=None,
                    help="a sentence-transformers model folder (default: the bundled MiniLM)")
    ap.add_argument("--per-label", type=_per_label, nargs="+", default=None,
                    help="the test table's rows: reviewed per label, or 'all' (default: "
                         + " ".join("all" if n is None else str(n) for n in ROUNDS) + ")")
    ap.add_argument("--throughput", type=int, default=0, metavar="N",
                    help="first time embedding N test texts with the bundled model and the "
                         "chosen one (0: not measured)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--tune", action="store_true")
    mode.add_argument("--tune-unlabelled", action="store_true")
    mode.add_argument("--order", action="store_true")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    report: dict = {"load_average_start": os.getloadavg()}
    if args.throughput:
        texts = [t for t, _ in load_rows(args.test)[:args.throughput]]
        paths = [embedder_model_dir(), args.embedder_path or embedder_model_dir()]
        report["embedding_throughput"] = embedding_throughput(paths, texts)
    tuning = args.tune or args.tune_unlabelled
    s = Setup(args, dev_only=tuning)
    report |= {"scorer": {"C": C, "blend": BLEND, "unlabelled_weight": UNLABELLED_WEIGHT,
                          "propagation_k": propagation.K, "propagation_alpha": propagation.ALPHA},
               "embedder": s.embedder.model_id, "test_items": len(s.test),
               "load_average_embedded": os.getloadavg()}

    def write(data: dict) -> None:  # after each row of the table too
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=1))

    if args.tune and args.per_label:  # e.g. all of the pool reviewed: a wider grid
        report["tune_dev"] = tune(s, tuple(args.per_label), (10.0, 30.0, 100.0),
                                  (0.1, 0.2, 0.5, 1.0, 3.0))
    elif args.tune:
        report["tune_dev"] = tune(s)
    elif args.tune_unlabelled:
        report["tune_unlabelled_dev"] = tune_unlabelled(s)
    elif args.order:
        report["order"] = order(s)
    else:
        rounds = ROUNDS if args.per_label is None else tuple(args.per_label)
        report["curve"] = curve(s, rounds, done=lambda rows: write(report | {"curve": rows}))
    report["load_average_end"] = os.getloadavg()
    write(report)


if __name__ == "__main__":
    main()
