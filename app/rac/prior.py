"""The prior calibrator: a confidence that is P(label is right) from the first item, before any
review, fitted from the schema alone.

Each schema example is classified against the label index without its own vector
(`LabelIndex.leave_one_out`): a labelled decision (the features of the label retrieval would
choose, and whether it is the example's label). The calibrator is fitted on those decisions
exactly as on reviews (`calibration.fit`), so a target precision turns into a cutoff the same way.

With a judge, the examples the cascade would send to it (below the cutoff for the target
precision) are asked too, at most `JUDGE_QUESTIONS` of them: the fit then measures whether the
judge's P(yes) carries information, and gives it no weight if not (the bundled 135M judge: none).
Reviews take over once there are enough of them (app/calibration/service.py).
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import replace

from app.rac import calibration
from app.rac.calibration import Calibrator, features
from app.rac.decision import TraceStep
from app.rac.index import LabelIndex
from app.rac.judge import Judge
from app.rac.prompts import Question

PRIOR_VERSION = 0
"""`calibrator_version` of decisions scored by the schema prior (reviewed calibrators count
from 1)."""
MAX_EXAMPLES = 2000
"""Schema examples classified leave-one-out, at most (a fixed random sample): enough for a
five-feature logistic fit, and a bounded cost at 20,000 labels."""
PRIOR_FEATURES = ("p_yes", "asked", "margin")
"""What the prior is fitted on. Not the retrieval score: left out, an example is closer to its
sibling example than an item is to a label's examples, so its fitted weight came out negative
(-0.15) and ranked the dev split worse (best coverage at precision 0.95: 0.42 against 0.46 with
the margin alone; bench/prior_calibration.py)."""
LOGIT_SHIFT = -0.6
"""Added to the prior's log-odds. Schema examples are easier than real items (retrieval is right
for 86% of them left out, for 77% of the Banking77 train dev split), so the unshifted prior is
overconfident (dev ECE 0.078); shifts of -0.5 to -0.7 gave dev ECE 0.019-0.021. Tuned on
Banking77 train only."""
JUDGE_QUESTIONS = 60
"""Schema examples the judge is asked about to measure its information, at most: about one
minute of the bundled judge on 2 busy cores, once per schema version and judge."""


def schema_decisions(index: LabelIndex, top_k: int, limit: int = MAX_EXAMPLES, seed: int = 0
                     ) -> tuple[list[str], list[list[TraceStep]], list[bool]]:
    """(example texts, traces, was retrieval's top label the example's label) for every schema
    example classified against the index without itself."""
    examples = [(example.strip(), label.name) for label in index.labels
                for example in label.examples]
    rows, candidates = index.leave_one_out(top_k, limit=limit, seed=seed)
    texts = [examples[r][0] for r in rows]
    traces = [[TraceStep(c.label, c.rank, c.score) for c in cands] for cands in candidates]
    right = [bool(t) and t[0].label == examples[r][1]
             for r, t in zip(rows, traces, strict=True)]
    return texts, traces, right


def fit_prior(index: LabelIndex, top_k: int, judge: Judge | None = None,
              target_precision: float = 0.95, judge_questions: int = JUDGE_QUESTIONS,
              seed: int = 0) -> Calibrator:
    """The schema's prior calibrator (identity when the schema has too few examples, or
    retrieval is always right or always wrong on them)."""
    texts, traces, right = schema_decisions(index, top_k, seed=seed)
    kept = [i for i, t in enumerate(traces) if t]
    x = [_prior_row(features(traces[i], traces[i][0].label)) for i in kept]
    y = [right[i] for i in kept]
    prior = _shifted(calibration.fit(x, y, version=PRIOR_VERSION, source="schema", seed=seed))
    prior = replace(prior, meta={**prior.meta, "schema_examples": len(kept), "top_k": top_k})
    if judge is None or prior.is_identity:
        return prior
    cutoff = prior.cutoff_for_precision(target_precision)
    unsure = [j for j, row in enumerate(x) if cutoff is None or prior.confidence(row) < cutoff]
    asked = unsure[:judge_questions]
    if not asked:
        return prior
    trace_of = [traces[kept[j]] for j in asked]
    answers = judge.p_yes([Question(texts[kept[j]], index.labels[index.label_ids[t[0].label]])
                           for j, t in zip(asked, trace_of, strict=True)])
    for trace, p in zip(trace_of, answers, strict=True):
        trace[0].p_yes = p
    for j, trace in zip(asked, trace_of, strict=True):
        x[j] = _prior_row(features(trace, trace[0].label))
    combined = _shifted(calibration.fit(x, y, version=PRIOR_VERSION, source="schema",
                                        seed=seed))
    return replace(combined, meta={**combined.meta, "schema_examples": len(kept),
                                   "top_k": top_k, "judge_questions": len(asked),
                                   "judge": judge.model_id, "prompt": judge.prompt_version})


def _prior_row(row: list[float] | None) -> list[float]:
    """The features the prior uses; the others made constant (so they get no weight)."""
    assert row is not None
    return [v if name in PRIOR_FEATURES else 0.0
            for name, v in zip(calibration.FEATURES, row, strict=True)]


def _shifted(prior: Calibrator, shift: float = LOGIT_SHIFT) -> Calibrator:
    if prior.is_identity:
        return prior

    def move(p: float) -> float:
        p = min(1 - 1e-6, max(1e-6, p))
        return round(1.0 / (1.0 + math.exp(-(math.log(p / (1 - p)) + shift))), 4)

    return replace(prior, bias=prior.bias + shift,
                   reference=tuple(move(p) for p in prior.reference),
                   meta={**prior.meta, "logit_shift": shift})


class PriorStore:
    """Prior calibrators per label index (and top_k and judge), computed once and forgotten with
    the index. Thread-safe: concurrent requests for one schema wait for one fit."""

    def __init__(self) -> None:
        self._priors: weakref.WeakKeyDictionary[LabelIndex, dict[tuple, Calibrator]] = (
            weakref.WeakKeyDictionary())
        self._lock = threading.Lock()

    def get(self, index: LabelIndex, top_k: int, judge: Judge | None,
            target_precision: float) -> Calibrator:
        key = (top_k, target_precision,
               None if judge is None else (judge.model_id, judge.prompt_version))
        with self._lock:
            found = self._priors.get(index, {}).get(key)
            if found is None:
                found = fit_prior(index, top_k, judge, target_precision)
                self._priors.setdefault(index, {})[key] = found
            return found
