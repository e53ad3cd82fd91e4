"""Signals that tell an out-of-scope item from an in-scope one, measured on the train dev split.

Issue 11, item 3: with 10 labels dropped from the schema, their items should be auto-accepted at
most 5% of the time while the in-scope coverage at precision 0.95 falls by at most 3 points. The
prior (app/rac/prior.py) sees only the top label's retrieval score and its margin. This script
computes, from vectors only, more candidate signals for every dev item and every schema probe
(each example without itself = in scope, without its label = out of scope), then:

1. prints how well each signal alone separates the held-out labels' dev items from the in-scope
   ones (AUROC; also against the in-scope items retrieval gets right), and
2. fits priors on the probes with several feature sets, out-of-scope weights and log-odds
   shifts (the prior's own fit, `calibration._fit_logistic`, cross-validated reference and
   `Calibrator.cutoff_for_precision`, exactly as `prior_from_probes`), plus an out-of-scope
   gate (a second logistic model, in-scope vs label-out probes, that only blocks auto-accept),
   and reports on the dev split: full schema ECE / accepted at the cutoff for 0.95 / its
   measured precision / best coverage at 0.95; with 10 labels out (two fixed choices, as
   bench/prior_calibration.py): the held-out labels' items accepted, the in-scope items
   accepted and best coverage at 0.95, and the held-out labels' items accepted at the cutoff
   that gives that best in-scope coverage (the trade-off free of how the cutoff is chosen).
3. an optimistic bound (`oracle`): a gate fitted on the dev items themselves, with (e) signals
   from the other items of the batch, and a sweep of the Mahalanobis covariance's shrinkage.

Signals (all from the query vector, the label profiles and the example vectors):
  score, margin             as the prior (the top label's retrieval score, minus the second's)
  gap_mean                  top score minus the mean of ranks 2-5
  spread                    standard deviation of the top-5 scores
  entropy                   entropy of softmax(top-5 scores / 0.05)
  prof_top, ex_top          the item's similarity to the top label's profile / nearest example
  ex_other                  similarity to the nearest example of any *other* label
  ex_gap                    ex_top - ex_other
  radius_gap                score minus the top label's "radius": the mean leave-one-out score
                            its own examples get for it (an item farther from the label than its
                            own examples are is suspicious); the probe's own example excluded
  maha_top, maha_min        Mahalanobis distance (class means of profile + examples, one shared
                            within-class covariance shrunk towards the identity) to the top
                            label / to the nearest label (Lee et al. 2018; Podolskiy et al.
                            2021 found it the best OOD score for intent classification, with a
                            fine-tuned encoder)
  rmaha_min                 relative Mahalanobis: maha_min minus the distance to one Gaussian
                            of all label points (Ren et al. 2021)

`--cache FILE.npz` keeps the dev items' vectors (and FILE.data.pkl the signals) between runs.

    python -m bench.oos_signals --schema schemas/banking77.yaml --train DIR/train.csv
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import time
from pathlib import Path

import numpy as np

from app.cli.evaluate import held_out_labels
from app.rac import calibration
from app.rac.embedder import SentenceTransformerEmbedder
from app.rac.evaluation import coverage_at_precision, expected_calibration_error
from app.rac.index import PROFILE_WEIGHT_FLOOR, PROFILE_WEIGHT_PRIOR, LabelIndex
from bench.common import dev_split, load_labels, load_rows

RESULTS = Path(__file__).parent / "results"
SIGNALS = ("score", "margin", "gap_mean", "spread", "entropy", "prof_top", "ex_top", "ex_other",
           "ex_gap", "radius_gap", "maha_top", "maha_min", "rmaha_min")
TOP_K = 5
SHRINK = 0.5


class Geometry:
    """One schema's label vectors (profiles, examples grouped by label) and the Mahalanobis
    model fitted on them."""

    def __init__(self, profiles: np.ndarray, examples: np.ndarray, owner: np.ndarray,
                 shrink: float = SHRINK) -> None:
        self.P, self.E, self.owner = profiles, examples, owner
        self.n_labels = len(profiles)
        self.rows_of = [np.flatnonzero(owner == i) for i in range(self.n_labels)]
        # class points: profile + examples
        self.points = np.concatenate([profiles, examples])
        self.cls = np.concatenate([np.arange(self.n_labels), owner])
        self.shrink = shrink
        self._maha: dict[tuple[int, int], tuple] = {}
        self.maha_model(-1, -1)
        self.radius_scores: np.ndarray | None = None

    def maha_model(self, drop_example: int, drop_label: int) -> tuple:
        """(class means, whitening of the shared within-class covariance, global mean, global
        whitening), fitted without the dropped example / label's points."""
        key = (drop_example, drop_label)
        if key not in self._maha:
            keep = np.ones(len(self.points), dtype=bool)
            if drop_example >= 0:
                keep[self.n_labels + drop_example] = False
            if drop_label >= 0:
                keep &= self.cls != drop_label
            points, cls = self.points[keep], self.cls[keep]
            sums = np.zeros_like(self.P)
            np.add.at(sums, cls, points)
            sizes = np.maximum(1, np.bincount(cls, minlength=self.n_labels))
            means = sums / sizes[:, None]
            self._maha[key] = (means, self._whitening(points - means[cls]),
                               points.mean(0), self._whitening(points - points.mean(0)))
            if len(self._maha) > 4:  # probes are scored one after the other
                self._maha.pop(next(k for k in self._maha if k != (-1, -1)))
        return self._maha[key]

    def _whitening(self, resid: np.ndarray) -> np.ndarray:
        cov = resid.T @ resid / len(resid)
        cov = (1 - self.shrink) * cov + self.shrink * np.trace(cov) / cov.shape[0] * np.eye(
            cov.shape[0])
        vals, vecs = np.linalg.eigh(cov)
        return vecs / np.sqrt(vals)

    def scores(self, q: np.ndarray, drop_example: int = -1, drop_label: int = -1
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every label's retrieval score for one query (the index's rule), with one example or
        one label left out: (total, profile sims, best example sims)."""
        prof = self.P @ q
        sims = self.E @ q
        if drop_example >= 0:
            sims[drop_example] = -np.inf
        best = np.full(self.n_labels, -np.inf)
        left = np.zeros(self.n_labels)
        for i, rows in enumerate(self.rows_of):
            r = rows[rows != drop_example] if drop_example >= 0 else rows
            left[i] = len(r)
            if len(r):
                best[i] = sims[r].max()
        w = np.maximum(PROFILE_WEIGHT_FLOOR, PROFILE_WEIGHT_PRIOR / (PROFILE_WEIGHT_PRIOR + left))
        with np.errstate(invalid="ignore"):
            total = np.where(left > 0, w * prof + (1 - w) * best, prof)
        if drop_label >= 0:
            total[drop_label] = -np.inf
        return total, prof, best

    def fit_radius(self) -> None:
        """Each example's leave-one-out score for its own label."""
        self.radius_scores = np.array([
            self.scores(self.E[j], drop_example=j)[0][self.owner[j]] for j in range(len(self.E))])

    def radius(self, label: int, drop_example: int = -1) -> float:
        assert self.radius_scores is not None
        rows = self.rows_of[label]
        rows = rows[rows != drop_example]
        return float(self.radius_scores[rows].mean()) if len(rows) else float(
            self.radius_scores.mean())

    def features(self, q: np.ndarray, drop_example: int = -1, drop_label: int = -1
                 ) -> tuple[int, dict[str, float]]:
        total, prof, best = self.scores(q, drop_example, drop_label)
        order = np.argsort(-total, kind="stable")[:TOP_K]
        s = total[order]
        top = int(order[0])
        other_rows = self.owner != top
        if drop_label >= 0:
            other_rows &= self.owner != drop_label
        sims = self.E @ q
        if drop_example >= 0:
            other_rows[drop_example] = False
        ex_other = float(sims[other_rows].max())
        z = (s - s.max()) / 0.05
        p = np.exp(z) / np.exp(z).sum()
        # Mahalanobis: class means and covariance without the dropped example / label (so a
        # probe is not part of the model that scores it)
        means, white, g_mean, g_white = self.maha_model(drop_example, drop_label)
        maha = (((q - means) @ white) ** 2).sum(1)
        if drop_label >= 0:
            maha[drop_label] = np.inf
        g = float((((q - g_mean) @ g_white) ** 2).sum())
        return top, {
            "score": float(s[0]), "margin": float(s[0] - s[1]),
            "gap_mean": float(s[0] - s[1:].mean()), "spread": float(s.std()),
            "entropy": float(-(p * np.log(p + 1e-12)).sum()),
            "prof_top": float(prof[top]), "ex_top": float(best[top]), "ex_other": ex_other,
            "ex_gap": float(best[top] - ex_other),
            "radius_gap": float(s[0] - self.radius(top, drop_example)),
            "maha_top": float(maha[top]), "maha_min": float(maha.min()),
            "rmaha_min": float(maha.min() - g)}


def geometry_of(index: LabelIndex, shrink: float = SHRINK) -> Geometry:
    vectors, owners, _ = index.training_points()
    n = len(index.labels)
    geo = Geometry(vectors[:n].astype(np.float64), vectors[n:].astype(np.float64), owners[n:],
                   shrink)
    geo.fit_radius()
    return geo


def probe_rows(geo: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, right, out of scope) of every schema probe."""
    x, right, oos = [], [], []
    for j in range(len(geo.E)):
        top, f = geo.features(geo.E[j], drop_example=j)
        x.append([f[k] for k in SIGNALS])
        right.append(top == geo.owner[j])
        oos.append(False)
    for j in range(len(geo.E)):
        _, f = geo.features(geo.E[j], drop_example=j, drop_label=int(geo.owner[j]))
        x.append([f[k] for k in SIGNALS])
        right.append(False)
        oos.append(True)
    return np.array(x), np.array(right), np.array(oos)


def item_rows(geo: Geometry, names: list[str], vectors: np.ndarray, golds: list[str]
              ) -> tuple[np.ndarray, np.ndarray]:
    x, right = [], []
    for q, gold in zip(vectors, golds, strict=True):
        top, f = geo.features(q)
        x.append([f[k] for k in SIGNALS])
        right.append(names[top] == gold)
    return np.array(x), np.array(right)


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a positive scores higher than a negative), ties 0.5."""
    values = np.concatenate([pos, neg])
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable").astype(float)
    # average ranks for ties
    _, inv, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    ranks = (sums / counts)[inv]
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) - 1) / 2) / (len(pos) * len(neg)))


def fit_conf(px: np.ndarray, py: np.ndarray, w8: np.ndarray, shift: float
             ) -> tuple[callable, np.ndarray]:
    """A logistic fit on the probes (the prior's solver) and its cross-validated probe
    confidences, log-odds shifted."""
    w, b, m, s = calibration._fit_logistic(px, py.astype(np.int64), w8)
    held = calibration._held_out(px, py.astype(np.int64), 5, 0, w8)
    held = 1 / (1 + np.exp(-(np.log(np.clip(held, 1e-6, 1 - 1e-6) /
                                     (1 - np.clip(held, 1e-6, 1 - 1e-6))) + shift)))

    def predict(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-np.clip((x - m) / s @ w + b + shift, -60, 60)))
    return predict, held


def cutoff_of(reference: np.ndarray, weight: np.ndarray, target: float = 0.95) -> float | None:
    ref = calibration._reference(reference, weight)
    return calibration.Calibrator(weights=(1.0,), reference=ref).cutoff_for_precision(target)


def evaluate_model(model: dict, data: dict) -> dict:
    """One model on every schema setting: fitted on that setting's probes, scored on dev."""
    cols = [SIGNALS.index(k) for k in model["features"]]
    out: dict = {}
    for name, d in data.items():
        px, py, poos = d["probes"]
        w8 = np.where(poos, model["oos_weight"], 1.0)
        predict, held = fit_conf(px[:, cols], py, w8, model["shift"])
        dx, dy = d["items"]
        conf = predict(dx[:, cols])
        ref_conf = held
        block = np.zeros(len(dx), dtype=bool)
        if model.get("gate"):
            gcols = [SIGNALS.index(k) for k in model["gate"]["features"]]
            gw = np.where(poos, model["gate"]["oos_weight"], 1.0)
            gate, gheld = fit_conf(px[:, gcols], (~poos), gw, 0.0)
            p_in = gate(dx[:, gcols])
            if model["gate"]["mode"] == "product":
                conf = conf * p_in
                ref_conf = held * gheld
            else:  # block: below the gate's cutoff, never auto-accepted
                keep = model["gate"]["keep"]
                g_cut = float(np.quantile(gheld[~poos], 1 - keep))
                block = p_in < g_cut
                ref_conf = np.where(gheld < g_cut, 0.0, held)
        cutoff = cutoff_of(ref_conf, w8)
        accepted = (conf >= (cutoff if cutoff is not None else 2.0)) & ~block
        oos = np.isin(d["golds"], d["drop"])
        inside = ~oos
        # the cutoff read from the items' own confidences (what a job does: round 4)
        shown = np.where(block, 0.0, conf)
        items_cutoff = cutoff_of(shown, np.ones(len(shown)))
        by_items = shown >= (items_cutoff if items_cutoff is not None else 2.0)
        best = coverage_at_precision(dy[inside].tolist(), [True] * int(inside.sum()),
                                     shown[inside].tolist(), 0.95)
        entry = {"cutoff": cutoff,
                 "accepted_in_scope": float(accepted[inside].mean()),
                 "precision_in_scope": (float(dy[inside & accepted].mean())
                                        if (inside & accepted).any() else None),
                 "best_coverage_at_0.95_in_scope": best["coverage"],
                 "ece": expected_calibration_error(conf.tolist(), dy.tolist()),
                 "items_cutoff": items_cutoff,
                 "items_cutoff_accepted_in_scope": float(by_items[inside].mean()),
                 "items_cutoff_precision_in_scope": (float(dy[inside & by_items].mean())
                                                     if (inside & by_items).any() else None)}
        if d["drop"]:
            entry["out_of_scope_accepted"] = float(accepted[oos].mean())
            entry["items_cutoff_out_of_scope_accepted"] = float(by_items[oos].mean())
            entry["out_of_scope_accepted_at_best_in_scope_cutoff"] = (
                float((shown[oos] >= best["cutoff"]).mean()) if best["cutoff"] is not None
                else 0.0)
        out[name] = entry
    return out


def neighbourhood(vectors: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
    """(e) Signals from the other items of the batch (a job's items, no gold label): held-out
    labels' items sit close to each other and farther from any label than their neighbours do.
    nn10_gap: mean similarity to the 10 nearest other items minus the top label's score;
    nn3_gap the same with 3; agree10: share of the 10 nearest items with the same top label;
    nbr_score: the 10 nearest items' mean top score."""
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    nearest = np.argsort(-sims, axis=1)[:, :10]
    close = np.take_along_axis(sims, nearest, axis=1)
    score = items[:, SIGNALS.index("score")]
    return {"nn10_gap": close.mean(1) - score, "nn3_gap": close[:, :3].mean(1) - score,
            "nbr_score": score[nearest].mean(1)}


def oracle(data: dict, drops: dict, vectors: np.ndarray) -> dict:
    """How far any gate on these signals could go: a logistic model fitted on the dev items
    themselves (held-out labels' items vs in-scope items, 5-fold cross-validated; it has seen
    items of the very labels it must reject, so this is optimistic), blocking the baseline
    prior's accepted items from the most out-of-scope-looking down until at most 5% of the
    held-out labels' items are accepted: what share of the right in-scope acceptances survive."""
    out: dict = {}
    for name, drop in drops.items():
        if not drop:
            continue
        d = data[name]
        px, py, poos = d["probes"]
        dx, dy = d["items"]
        oos = np.isin(d["golds"], drop)
        base = [SIGNALS.index("score"), SIGNALS.index("margin")]
        w8 = np.where(poos, 0.1, 1.0)
        predict, held = fit_conf(px[:, base], py, w8, 0.2)
        accepted = predict(dx[:, base]) >= cutoff_of(held, w8)
        extra = neighbourhood(vectors, dx)
        if name == list(drops)[1]:
            for k, v in extra.items():
                print(f"AUROC {name} {k}: items_in_vs_out={auroc(v[~oos], v[oos]):.3f}")
        out[name] = {"auroc_items_in_vs_out": {k: auroc(v[~oos], v[oos])
                                               for k, v in extra.items()}}
        named = {k: dx[:, i] for i, k in enumerate(SIGNALS)} | extra
        vector_only = [k for k in SIGNALS]
        for set_name, feats in (("score+margin", ["score", "margin"]),
                                ("all vector signals", vector_only),
                                ("score+margin + (e) neighbourhood", ["score", "margin",
                                                                      *extra]),
                                ("all vector signals + (e) neighbourhood",
                                 vector_only + list(extra))):
            x = np.column_stack([named[k] for k in feats])
            p_out = calibration._held_out(x, oos.astype(np.int64), 5, 0, None)
            kept = accepted.copy()
            for i in np.argsort(-p_out, kind="stable"):
                if kept[oos].sum() <= 0.05 * oos.sum():
                    break
                kept[i] = False
            right = ~oos & dy
            out[name][set_name] = {
                "auroc": auroc(p_out[oos], p_out[~oos]),
                "baseline_out_of_scope_accepted": float(accepted[oos].mean()),
                "baseline_accepted_in_scope": float(accepted[~oos].mean()),
                "accepted_in_scope_at_5pct": float(kept[~oos].mean()),
                "right_acceptances_kept": float((kept & right).sum() / (accepted & right).sum())}
            print(f"oracle {name[:8]} {set_name:40s} " + json.dumps(out[name][set_name]),
                  flush=True)
    return out


def signals_of(labels: list, embedder: SentenceTransformerEmbedder, full: LabelIndex,
               drops: dict, vectors: np.ndarray, golds: list[str], shrink: float = SHRINK
               ) -> dict:
    """Every probe's and dev item's signals, per schema setting."""
    data: dict = {}
    for name, drop in drops.items():
        kept = [x for x in labels if x.name not in drop]
        index = (full if not drop else
                 LabelIndex.build(kept, embedder, reuse=full.vectors_by_hash()))
        geo = geometry_of(index, shrink)
        names = [x.name for x in kept]
        data[name] = {"drop": drop, "golds": golds, "probes": probe_rows(geo),
                      "items": item_rows(geo, names, vectors, golds)}
        # the rule reimplemented here must rank as the index does
        found = index.candidates(vectors.astype(np.float32), 1)
        same = np.mean([c[0].label == names[int(np.argmax(geo.scores(q)[0]))]
                        for c, q in zip(found, vectors, strict=True)])
        print(f"{name}: top-1 agrees with LabelIndex.search on {same:.4f} of dev items",
              flush=True)
        assert same > 0.995, "the signals' retrieval rule differs from the index's"

    return data


def show(run: dict, drops: dict) -> None:
    f, a, b = (run[k] for k in drops)
    print(f"{run['name'][:60]:60s} w={run['oos_weight']:.2f} s={run['shift']:+.1f} | "
          f"full ece={f['ece']:.3f} acc={f['accepted_in_scope']:.3f} "
          f"prec={f['precision_in_scope'] or 0:.3f} cov={f['best_coverage_at_0.95_in_scope']:.3f}"
          f" | oos {a['out_of_scope_accepted']:.3f}/{b['out_of_scope_accepted']:.3f} "
          f"in-acc {a['accepted_in_scope']:.3f}/{b['accepted_in_scope']:.3f} "
          f"in-cov {a['best_coverage_at_0.95_in_scope']:.3f}/"
          f"{b['best_coverage_at_0.95_in_scope']:.3f} | items-cut: full acc "
          f"{f['items_cutoff_accepted_in_scope']:.3f} "
          f"prec {f['items_cutoff_precision_in_scope'] or 0:.3f} oos "
          f"{a['items_cutoff_out_of_scope_accepted']:.3f}/"
          f"{b['items_cutoff_out_of_scope_accepted']:.3f} | oos@best "
          f"{a['out_of_scope_accepted_at_best_in_scope_cutoff']:.3f}/"
          f"{b['out_of_scope_accepted_at_best_in_scope_cutoff']:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None,
                        help="npz file for the dev items' vectors (reused when present)")
    parser.add_argument("--out", type=Path, default=RESULTS / "oos_signals.json")
    args = parser.parse_args()
    started = time.time()
    labels = load_labels(args.schema)
    embedder = SentenceTransformerEmbedder(None)
    full = LabelIndex.build(labels, embedder)
    dev, _ = dev_split(load_rows(args.train), labels)
    golds = [g for _, g in dev]
    if args.cache is not None and args.cache.exists():
        vectors = np.load(args.cache)["vectors"]
    else:
        vectors = embedder.embed([t for t, _ in dev])
        if args.cache is not None:
            np.savez(args.cache, vectors=vectors)
    vectors = vectors.astype(np.float64)
    drops = {"full": [],
             "from 0 (rac eval --out-of-scope 10)": held_out_labels(labels, 10),
             "from 3": [labels[i].name for i in range(3, len(labels), 7)][:10]}
    pickled = args.cache.with_suffix(".data.pkl") if args.cache is not None else None
    if pickled is not None and pickled.exists():
        data = pickle.loads(pickled.read_bytes())
    else:
        data = signals_of(labels, embedder, full, drops, vectors, golds)
        if pickled is not None:
            pickled.write_bytes(pickle.dumps(data))
    report: dict = {"dev_items": len(dev), "signals": SIGNALS, "auroc": {}, "runs": [],
                    "load_average_start": os.getloadavg()}
    for name, d in data.items():
        if not d["drop"]:
            continue
        dx, dy = d["items"]
        oos = np.isin(golds, d["drop"])
        px, _, poos = d["probes"]
        report["auroc"][name] = {
            k: {"items_in_vs_out": auroc(dx[~oos, i], dx[oos, i]),
                "items_right_vs_out": auroc(dx[~oos & dy, i], dx[oos, i]),
                "probes_in_vs_out": auroc(px[~poos, i], px[poos, i])}
            for i, k in enumerate(SIGNALS)}
        for k, v in report["auroc"][name].items():
            print(f"AUROC {name:38s} {k:12s} " + " ".join(f"{a}={b:.3f}" for a, b in v.items()))

    base = ["score", "margin"]
    sets = {"score+margin": base,
            "(a) +gap_mean,spread,entropy": base + ["gap_mean", "spread", "entropy"],
            "(a) +ex_top,prof_top,ex_other,ex_gap": base + ["prof_top", "ex_top", "ex_other",
                                                            "ex_gap"],
            "(a) all": base + ["gap_mean", "spread", "entropy", "prof_top", "ex_top",
                               "ex_other", "ex_gap"],
            "(b) +radius_gap": base + ["radius_gap"],
            "(d) +maha_top,maha_min": base + ["maha_top", "maha_min"],
            "(d) +rmaha_min": base + ["rmaha_min"],
            "all signals": list(SIGNALS)}
    models = []
    for set_name, feats in sets.items():
        for oos_weight in (0.1, 0.25):
            for shift in (0.0, 0.2):
                models.append({"name": set_name, "features": feats, "oos_weight": oos_weight,
                               "shift": shift})
    gates = (("score+margin", base), ("all signals", list(SIGNALS)),
             ("(d) maha", ["maha_top", "maha_min", "rmaha_min"]), ("(d) rmaha_min", ["rmaha_min"]))
    for gate_feats_name, gate_feats in gates:
        for keep in (0.95, 0.9, 0.8, 0.7, 0.6, 0.5):
            models.append({"name": f"(c) block gate on {gate_feats_name}, keeping {keep:.0%} of "
                           "in-scope probes", "features": base, "oos_weight": 0.1, "shift": 0.2,
                           "gate": {"features": gate_feats, "oos_weight": 1.0, "mode": "block",
                                    "keep": keep}})
    # P(right) = P(right | in scope) x P(in scope): the first fitted on in-scope probes (or as
    # the prior, with out-of-scope probes too), the second on in-scope vs label-out probes
    for gate_feats_name, gate_feats in gates:
        for conf_oos, gate_oos in ((0.1, 0.1), (0.0, 0.1), (0.0, 0.25)):
            for shift in (0.0, 0.2, 0.4):
                models.append({"name": f"(c) product gate on {gate_feats_name}, gate weight "
                               f"{gate_oos}", "features": base, "oos_weight": conf_oos,
                               "shift": shift,
                               "gate": {"features": gate_feats, "oos_weight": gate_oos,
                                        "mode": "product", "keep": None}})
    for model in models:
        run = {**model, **evaluate_model(model, data)}
        report["runs"].append(run)
        show(run, drops)
    report["oracle"] = oracle(data, drops, vectors)
    report["shrink_sweep"] = []
    for shrink in (0.2, 0.8):  # the Mahalanobis covariance's shrinkage towards the identity
        swept = signals_of(labels, embedder, full, drops, vectors, golds, shrink)
        for gate_name, gate in (("(d) maha", ["maha_top", "maha_min", "rmaha_min"]),
                                ("maha_top", ["maha_top"]),
                                ("score+margin+maha", base + ["maha_top", "maha_min",
                                                              "rmaha_min"])):
            for keep in (0.8, 0.7, 0.6, 0.5):
                model = {"name": f"(c) block gate on {gate_name}, keeping {keep:.0%} of "
                         f"in-scope probes, shrink {shrink}", "features": base,
                         "oos_weight": 0.1, "shift": 0.2, "shrink": shrink,
                         "gate": {"features": gate, "oos_weight": 1.0, "mode": "block",
                                  "keep": keep}}
                run = {**model, **evaluate_model(model, swept)}
                report["shrink_sweep"].append(run)
                show(run, drops)
    report["load_average_end"] = os.getloadavg()
    report["seconds"] = time.time() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
