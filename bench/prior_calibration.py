"""The schema prior's choices, measured on a dev split of Banking77 train (never test).

Fits the prior (app/rac/prior.py) on the schema's examples left out one at a time, with the
retrieval score and margin or the margin alone, and with log-odds shifts; scores 2,000 random
train items (seed 0, the schema's example texts excluded) and prints ECE, the cutoff for
precision 0.95 and the coverage and precision it gives, and the best coverage at 0.95.

    python -m bench.prior_calibration --schema schemas/banking77.yaml --train DIR/train.csv
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from app.cli.files import load_rows, load_schema, sample_rows
from app.rac import calibration
from app.rac.calibration import features
from app.rac.embedder import SentenceTransformerEmbedder
from app.rac.engine import TraceStep
from app.rac.evaluation import coverage_at_precision, expected_calibration_error
from app.rac.index import LabelIndex
from app.rac.prior import schema_decisions

RESULTS = Path(__file__).parent / "results"


def shifted(cal: calibration.Calibrator, shift: float) -> calibration.Calibrator:
    ref = np.clip(np.array(cal.reference), 1e-6, 1 - 1e-6)
    moved = 1 / (1 + np.exp(-(np.log(ref / (1 - ref)) + shift)))
    return replace(cal, bias=cal.bias + shift, reference=tuple(moved.tolist()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--dev-size", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=RESULTS / "prior_calibration.json")
    args = parser.parse_args()
    _, _, labels, _ = load_schema(args.schema)
    embedder = SentenceTransformerEmbedder(None)
    index = LabelIndex.build(labels, embedder)
    _, traces, right = schema_decisions(index, 5)
    x = np.array([features(t, t[0].label) for t in traces])
    y = np.array(right)
    examples = {e.strip() for label in labels for e in label.examples}
    rows = [r for r in load_rows(args.train, "text", "category") if r[0].strip() not in examples]
    rows = sample_rows(rows, args.dev_size, 0)
    found = index.candidates(embedder.embed([t for t, _ in rows]), 5)
    dev_x = np.array([features([TraceStep(c.label, c.rank, c.score) for c in cands],
                               cands[0].label) for cands in found])
    dev_y = np.array([cands[0].label == gold for cands, (_, gold) in zip(found, rows,
                                                                         strict=True)])
    report = {"schema_examples_right": float(y.mean()), "dev_retrieval_accuracy":
              float(dev_y.mean()), "runs": []}
    for name, keep in (("score+margin", (2, 3)), ("margin", (3,))):
        masked = x.copy()
        for col in range(5):
            if col not in keep:
                masked[:, col] = 0.5 if col == 0 else 0.0
        base = calibration.fit(masked, y, 0)
        for shift in (0.0, -0.3, -0.5, -0.6, -0.7, -0.9):
            cal = shifted(base, shift)
            conf = np.array([cal.confidence(row) for row in dev_x])
            cutoff = cal.cutoff_for_precision(0.95)
            kept = conf >= (cutoff if cutoff is not None else 2.0)
            run = {"features": name, "shift": shift,
                   "ece": expected_calibration_error(conf.tolist(), dev_y.tolist()),
                   "cutoff": cutoff, "coverage": float(kept.mean()),
                   "precision": float(dev_y[kept].mean()) if kept.any() else None,
                   "best_coverage_at_0.95": coverage_at_precision(
                       dev_y.tolist(), [True] * len(dev_y), conf.tolist(), 0.95)["coverage"]}
            report["runs"].append(run)
            print(json.dumps(run))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
