"""The cascade: retrieval decides what the calibrator is sure of; the judge is asked only where
its answer can change the outcome.

1. Retrieve the top_k labels; the candidate is retrieval's top label. Its calibrated confidence
   (the prior from the schema, or the calibrator fitted on reviews) is P(it is right).
2. At or above the cutoff: accepted, no judge question.
3. Below it, if the calibrator gives the judge's P(yes) a weight, the judge is asked about the
   candidate (one question per unsure item, all in one `Judge.p_yes` batch) and the confidence
   is recomputed with its answer: a judge that says yes can lift an item over the cutoff, one
   that says no keeps it for review. A judge found to carry no information (weight 0, e.g. the
   bundled 135M model, AUC 0.48) is not asked at all: its answer could not change anything.

The label is always retrieval's top label, so the cascade is exactly as accurate as retrieval
and never less; what the judge can add is coverage (items accepted) at the same precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.rac.calibration import IDENTITY, Calibrator
from app.rac.decision import ClassifyParams, Decision, Status, TraceStep
from app.rac.index import Candidate, LabelIndex

if TYPE_CHECKING:
    from app.rac.engine import Engine


def cascade(engine: Engine, texts: Sequence[str], index: LabelIndex,
            candidates: Sequence[list[Candidate]], params: ClassifyParams,
            calibrator: Calibrator | None) -> list[Decision]:
    cal = calibrator if calibrator is not None else IDENTITY
    traces = [[c.trace_step() for c in cands] for cands in candidates]
    unsure = [i for i, trace in enumerate(traces)
              if trace and cal.confidence_for(trace, trace[0].label) < params.cutoff]
    if unsure and engine.judge is not None and cal.judge_weight != 0.0:
        engine._ask([texts[i] for i in unsure], index, [traces[i] for i in unsure],
                    [[0]] * len(unsure))
    return [_decision(engine, trace, params, cal) for trace in traces]


def _decision(engine: Engine, trace: list[TraceStep], params: ClassifyParams,
              cal: Calibrator) -> Decision:
    version = None if cal.is_identity else cal.version
    if not trace:
        return Decision(None, 0.0, "no_match", trace, calibrator_version=version)
    top = trace[0]
    top.accepted = True
    confidence = cal.confidence_for(trace, top.label)
    status: Status = "accepted" if confidence >= params.cutoff else "needs_review"
    return engine._stamp(Decision(top.label, confidence, status, trace, [top.label],
                                  calibrator_version=version))
