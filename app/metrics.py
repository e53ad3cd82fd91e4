"""Prometheus metrics: request latency by route, judge questions and their latency, decisions by
status. `app.main` serves them at /metrics in the text format."""

from __future__ import annotations

import weakref

from prometheus_client import Counter, Histogram

from app.rac.judge import Judge

REQUEST_SECONDS = Histogram(
    "rac_http_request_duration_seconds", "HTTP request latency by route template.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
JUDGE_QUESTIONS = Counter("rac_judge_questions_total", "Questions answered by the judge.",
                          ["model"])
JUDGE_BATCH_SECONDS = Histogram(
    "rac_judge_batch_duration_seconds", "Time the judge took per batch of questions.", ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
DECISIONS = Counter("rac_decisions_total", "Engine decisions by status.", ["status"])


_observed: weakref.WeakSet[Judge] = weakref.WeakSet()


def observe_judge(judge: Judge) -> None:
    """Export the judge's batches; once per judge, however many apps share it."""
    if judge in _observed:
        return
    _observed.add(judge)

    def record(questions: int, seconds: float) -> None:
        JUDGE_QUESTIONS.labels(judge.model_id).inc(questions)
        JUDGE_BATCH_SECONDS.labels(judge.model_id).observe(seconds)

    judge.observers.append(record)


def count_decisions(statuses: list[str]) -> None:
    for status in statuses:
        DECISIONS.labels(status).inc()

