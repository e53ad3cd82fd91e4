"""Retrieve -> judge -> decide. One engine serves the API, batch jobs, the CLI and evaluation.

For each item the label index gives the top_k most similar labels. The judge is asked about one
label at a time, most similar first, and the first label whose P(yes) reaches `accept_threshold` is
the item's label (the paper's procedure). Its P(yes) is the confidence: at or above `cutoff` the
decision is `accepted`, below it `needs_review`; when no candidate is accepted it is `no_match`.

Questions are batched across items: round r asks every still-undecided item about its r-th
candidate in one `Judge.p_yes` call (the `window` strategy asks w candidates per round), so an HTTP
judge keeps many requests in flight and llama.cpp reuses each item's prompt prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from app.rac.cascade import cascade
from app.rac.decision import ClassifyParams, Decision, Status, TraceStep
from app.rac.embedder import Embedder
from app.rac.index import Candidate, LabelIndex
from app.rac.judge import Judge
from app.rac.prompts import Question

if TYPE_CHECKING:
    from app.rac.calibration import Calibrator
    from app.rac.scorer import LearntScorer

class Engine:
    def __init__(self, embedder: Embedder, judge: Judge | None) -> None:
        self.embedder = embedder
        self.judge = judge

    def retrieve(self, texts: Sequence[str], index: LabelIndex, top_k: int,
                 vectors: np.ndarray | None = None,
                 scorer: LearntScorer | None = None) -> list[list[Candidate]]:
        """The top_k candidates per text; a learnt `scorer` trained on this index's labels
        re-ranks a wider shortlist first (app/rac/scorer.py)."""
        if vectors is None:
            vectors = self.embedder.embed(texts)
        if scorer is None or not scorer.applies_to(index):
            return index.candidates(vectors, top_k)
        return scorer.rerank(index, vectors, top_k)

    def classify(self, texts: Sequence[str], index: LabelIndex, params: ClassifyParams,
                 vectors: np.ndarray | None = None,
                 calibrator: Calibrator | None = None,
                 scorer: LearntScorer | None = None) -> list[Decision]:
        """One decision per text. With a fitted `calibrator`, confidences are the calibrated
        probability that the label is right, and statuses follow from them. With a learnt
        `scorer`, candidates are ranked by it (and each decision records its version)."""
        params = _with_cutoff(params, calibrator)
        if params.strategy == "cascade" and not params.multi_label:  # multi-label: ask all
            candidates = self.retrieve(texts, index, params.top_k, vectors, scorer)
            decisions = cascade(self, texts, index, candidates, params, calibrator)
        else:
            decisions = self._decide(texts, index, params, vectors, scorer)
            if calibrator is not None and not calibrator.is_identity:
                decisions = [_calibrated(d, params, calibrator) for d in decisions]
        for d in decisions:
            d.cutoff, d.target_precision = params.cutoff, params.target_precision
            if scorer is not None and scorer.applies_to(index):
                d.scorer_version = scorer.version
        return decisions

    def _decide(self, texts: Sequence[str], index: LabelIndex, params: ClassifyParams,
                vectors: np.ndarray | None, scorer: LearntScorer | None) -> list[Decision]:
        candidates = self.retrieve(texts, index, params.top_k, vectors, scorer)
        traces = [[c.trace_step() for c in cands] for cands in candidates]
        if params.strategy == "retrieval":
            return [self._retrieval_decision(trace, params) for trace in traces]
        if self.judge is None:
            raise ValueError(f"strategy {params.strategy!r} needs a judge")
        if params.multi_label:
            self._ask(texts, index, traces, [list(range(len(t))) for t in traces])
            return [self._multi_label_decision(trace, params) for trace in traces]
        per_round = 1 if params.strategy == "sequential" else params.window
        undecided = list(range(len(texts)))
        next_rank = [0] * len(texts)
        while undecided:
            asks = [list(range(next_rank[i], min(next_rank[i] + per_round, len(traces[i]))))
                    for i in undecided]
            self._ask([texts[i] for i in undecided], index, [traces[i] for i in undecided], asks)
            still = []
            for i in undecided:
                next_rank[i] += per_round
                if _first_accepted(traces[i], params.accept_threshold) is None and \
                        next_rank[i] < len(traces[i]):
                    still.append(i)
            undecided = still
        return [self._single_label_decision(trace, params) for trace in traces]

    def _ask(self, texts: Sequence[str], index: LabelIndex, traces: Sequence[list[TraceStep]],
             ranks: Sequence[Sequence[int]]) -> None:
        questions: list[Question] = []
        targets: list[TraceStep] = []
        for text, trace, wanted in zip(texts, traces, ranks, strict=True):
            for rank in wanted:
                step = trace[rank]
                questions.append(Question(text, index.labels[index.label_ids[step.label]]))
                targets.append(step)
        assert self.judge is not None
        for step, p in zip(targets, self.judge.p_yes(questions), strict=True):
            step.p_yes = p

    def _stamp(self, decision: Decision) -> Decision:
        decision.judge_calls = sum(step.p_yes is not None for step in decision.trace)
        if self.judge is not None and decision.judge_calls:
            decision.model_id = self.judge.model_id
            decision.prompt_version = self.judge.prompt_version
        return decision

    def _single_label_decision(self, trace: list[TraceStep], params: ClassifyParams) -> Decision:
        chosen = _first_accepted(trace, params.accept_threshold)
        if chosen is None:
            asked = [s.p_yes for s in trace if s.p_yes is not None]
            return self._stamp(Decision(None, max(asked, default=0.0), "no_match", trace))
        chosen.accepted = True
        confidence = float(chosen.p_yes or 0.0)
        status: Status = "accepted" if confidence >= params.cutoff else "needs_review"
        return self._stamp(Decision(chosen.label, confidence, status, trace, [chosen.label]))

    def _multi_label_decision(self, trace: list[TraceStep], params: ClassifyParams) -> Decision:
        chosen = [s for s in trace if (s.p_yes or 0.0) >= params.accept_threshold]
        if not chosen:
            asked = [s.p_yes for s in trace if s.p_yes is not None]
            return self._stamp(Decision(None, max(asked, default=0.0), "no_match", trace))
        for step in chosen:
            step.accepted = True
        # The weakest accepted label decides whether the whole set needs a person.
        confidence = min(float(s.p_yes or 0.0) for s in chosen)
        status: Status = "accepted" if confidence >= params.cutoff else "needs_review"
        return self._stamp(Decision(chosen[0].label, confidence, status, trace,
                                    [s.label for s in chosen]))

    def _retrieval_decision(self, trace: list[TraceStep], params: ClassifyParams) -> Decision:
        if not trace:
            return Decision(None, 0.0, "no_match", trace)
        top = trace[0]
        top.accepted = True
        confidence = max(0.0, min(1.0, top.score if top.score is not None
                                  else top.retrieval_score))
        status: Status = "accepted" if confidence >= params.cutoff else "needs_review"
        return Decision(top.label, confidence, status, trace, [top.label])


def _with_cutoff(params: ClassifyParams, calibrator: Calibrator | None) -> ClassifyParams:
    """The cutoff a target precision implies under this calibrator (nothing is accepted when
    no cutoff reaches it); the given cutoff when there is no target or no calibrator."""
    if params.target_precision is None or calibrator is None or calibrator.is_identity:
        return params
    cutoff = calibrator.cutoff_for_precision(params.target_precision)
    return replace(params, cutoff=1.0 if cutoff is None else cutoff)


def _calibrated(decision: Decision, params: ClassifyParams, calibrator: Calibrator) -> Decision:
    if not decision.labels:
        return decision
    confidence = min(calibrator.confidence_for(decision.trace, label) for label in decision.labels)
    status: Status = "accepted" if confidence >= params.cutoff else "needs_review"
    return replace(decision, confidence=confidence, status=status,
                   calibrator_version=calibrator.version)


def _first_accepted(trace: list[TraceStep], threshold: float) -> TraceStep | None:
    """The most similar candidate the judge accepted, looking only at a prefix it was asked about
    in full: the decision never depends on questions asked beyond it (window = sequential)."""
    for step in trace:
        if step.p_yes is None:
            return None
        if step.p_yes >= threshold:
            return step
    return None
