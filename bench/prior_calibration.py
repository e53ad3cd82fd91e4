"""The schema prior's choices, measured on a dev split of Banking77 train (never test).

The prior (app/rac/prior.py) is fitted on the schema's probes: each example classified without
itself (in scope) and without its label (out of scope, weighted `oos_weight`). For each choice
of features (margin alone, or retrieval score and margin), out-of-scope weight and log-odds
shift, 2,000 random train items (seed 0, the schema's example texts excluded) are scored and the
script prints ECE, the cutoff for precision 0.95 and the share accepted at it with its measured
precision, and the best coverage at 0.95. Out of scope: the same dev items against the schema
without 10 labels (two fixed choices: every 7th label from position 0, as `rac eval
--out-of-scope 10`, and from position 3), the prior fitted on that smaller schema: the share of
the held-out labels' items accepted, and the in-scope items' acceptance and best coverage.

    python -m bench.prior_calibration --schema schemas/banking77.yaml --train DIR/train.csv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from app.cli.evaluate import held_out_labels
from app.cli.files import load_rows, load_schema, sample_rows
from app.rac import calibration
from app.rac.calibration import features
from app.rac.decision import TraceStep
from app.rac.embedder import SentenceTransformerEmbedder
from app.rac.evaluation import coverage_at_precision, expected_calibration_error
from app.rac.index import LabelIndex
from app.rac.prior import prior_from_probes, prior_row, schema_decisions
from app.rac.prompts import LabelInfo

RESULTS = Path(__file__).parent / "results"
SCORE = calibration.FEATURES.index("retrieval_score")


def probes(index: LabelIndex) -> tuple[list[list[float]], list[bool], list[bool]]:
    _, traces, right, oos = schema_decisions(index, 5)
    kept = [i for i, t in enumerate(traces) if t]
    return ([prior_row(features(traces[i], traces[i][0].label)) for i in kept],
            [right[i] for i in kept], [oos[i] for i in kept])


def decisions(index: LabelIndex, vectors: np.ndarray, golds: list[str]
              ) -> tuple[list[list[float]], np.ndarray]:
    found = index.candidates(vectors, 5)
    x = [prior_row(features([TraceStep(c.label, c.rank, c.score) for c in cands],
                            cands[0].label)) for cands in found]
    return x, np.array([cands[0].label == gold for cands, gold in zip(found, golds,
                                                                      strict=True)])


def masked(rows: list[list[float]], with_score: bool) -> list[list[float]]:
    return [[0.0 if (i == SCORE and not with_score) else v for i, v in enumerate(row)]
            for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--dev-size", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=RESULTS / "prior_calibration.json")
    args = parser.parse_args()
    _, _, labels, _ = load_schema(args.schema)
    embedder = SentenceTransformerEmbedder(None)
    full = LabelIndex.build(labels, embedder)
    examples = {e.strip() for label in labels for e in label.examples}
    rows = [r for r in load_rows(args.train, "text", "category") if r[0].strip() not in examples]
    rows = sample_rows(rows, args.dev_size, 0)
    golds = [g for _, g in rows]
    vectors = embedder.embed([t for t, _ in rows])
    drops = {"every 7th from 0 (rac eval --out-of-scope 10)": held_out_labels(labels, 10),
             "every 7th from 3": [labels[i].name for i in range(3, len(labels), 7)][:10]}
    settings: list[tuple[str, LabelIndex, list[str]]] = [("full", full, [])]
    for name, drop in drops.items():
        kept: list[LabelInfo] = [x for x in labels if x.name not in drop]
        settings.append((name, LabelIndex.build(kept, embedder,
                                                reuse=full.vectors_by_hash()), drop))
    data = [(name, index, drop, probes(index), decisions(index, vectors, golds))
            for name, index, drop in settings]
    report: dict = {"dev_items": len(rows), "runs": []}
    for with_score in (False, True):
        for oos_weight in (0.0, 0.05, 0.1, 0.15, 0.25):
            for shift in (-0.6, -0.3, 0.0, 0.2, 0.3):
                run: dict = {"features": "score+margin" if with_score else "margin",
                             "oos_weight": oos_weight, "shift": shift}
                for name, _, drop, (px, py, poos), (dx, dy) in data:
                    prior = prior_from_probes(masked(px, with_score), py, poos, oos_weight,
                                              shift)
                    conf = np.array([prior.confidence(r) for r in masked(dx, with_score)])
                    cutoff = prior.cutoff_for_precision(0.95)
                    accepted = conf >= (cutoff if cutoff is not None else 2.0)
                    oos = np.isin(golds, drop)
                    inside = ~oos
                    entry = {
                        "cutoff": cutoff,
                        "accepted_in_scope": float(accepted[inside].mean()),
                        "precision_in_scope": (float(dy[inside & accepted].mean())
                                               if (inside & accepted).any() else None),
                        "best_coverage_at_0.95_in_scope": coverage_at_precision(
                            dy[inside].tolist(), [True] * int(inside.sum()),
                            conf[inside].tolist(), 0.95)["coverage"]}
                    if drop:
                        entry["out_of_scope_accepted"] = float(accepted[oos].mean())
                    else:
                        entry["ece"] = expected_calibration_error(conf.tolist(), dy.tolist())
                    run[name] = entry
                report["runs"].append(run)
                print(json.dumps(run))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
