"""Turning a target precision into a cutoff with the schema prior, on the dev split of Banking77
train (never test).

The prior's cutoff is the lowest one at which the mean calibrated confidence of its reference
(the schema's probes, app/rac/prior.py) above it reaches the target. Compared here, for targets
0.90 / 0.95 / 0.97: that reference, and the confidences of the items being labelled themselves
(no gold labels needed: what a job could read from its own items), each applied to the 2,000 dev
items: the share accepted and its measured precision, beside the best coverage any cutoff gives.

    python -m bench.prior_cutoff --schema schemas/banking77.yaml --train DIR/train.csv
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from app.rac.calibration import _reference, features
from app.rac.embedder import SentenceTransformerEmbedder
from app.rac.evaluation import coverage_at_precision, expected_calibration_error
from app.rac.index import LabelIndex
from app.rac.prior import fit_prior
from bench.common import dev_split, load_labels, load_rows

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=RESULTS / "prior_cutoff.json")
    args = parser.parse_args()
    labels = load_labels(args.schema)
    dev, _ = dev_split(load_rows(args.train), labels)
    embedder = SentenceTransformerEmbedder(None)
    index = LabelIndex.build(labels, embedder)
    prior = fit_prior(index, 5)
    cands = index.candidates(embedder.embed([t for t, _ in dev]), 5)
    conf = np.array([prior.confidence(features([c.trace_step() for c in cs], cs[0].label))
                     for cs in cands])
    right = np.array([cs[0].label == g for cs, (_, g) in zip(cands, dev, strict=True)])
    own = replace(prior, reference=_reference(conf))
    report: dict = {"dev_items": len(dev),
                    "ece": expected_calibration_error(conf.tolist(), right.tolist()),
                    "mean_confidence": float(conf.mean()), "accuracy": float(right.mean()),
                    "targets": []}
    for target in (0.90, 0.95, 0.97):
        row: dict = {"target": target, "best_coverage": coverage_at_precision(
            right.tolist(), [True] * len(right), conf.tolist(), target)["coverage"]}
        for name, cal in (("schema_probes", prior), ("items_themselves", own)):
            cutoff = cal.cutoff_for_precision(target)
            accepted = conf >= (cutoff if cutoff is not None else 2.0)
            row[name] = {"cutoff": cutoff, "accepted": float(accepted.mean()),
                         "precision": float(right[accepted].mean()) if accepted.any() else None}
        report["targets"].append(row)
        print(json.dumps(row), flush=True)
    top = conf >= np.quantile(conf, 0.5)
    report["top_half"] = {"mean_confidence": float(conf[top].mean()),
                          "precision": float(right[top].mean())}
    print(json.dumps({k: v for k, v in report.items() if k != "targets"}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
