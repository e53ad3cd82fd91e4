"""/metrics in the Prometheus text format, fed by real requests and a real judge call."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import SCHEMAS_DIR, bearer, new_key


def _samples(client) -> dict[tuple[str, frozenset], float]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def _value(samples, name, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.slow
def test_metrics_count_requests_judge_calls_and_decisions(client, session_factory):
    admin = bearer(new_key(session_factory, "acme", "admin"))
    client.post("/v1/schemas", content=(SCHEMAS_DIR / "demo.yaml").read_bytes(),
                headers={**admin, "Content-Type": "application/yaml"})
    before = _samples(client)
    r = client.post("/v1/classify", json={"schema": "support-demo", "text": "add dark mode",
                                          "top_k": 2}, headers=admin)
    assert r.status_code == 200
    decision = r.json()
    client.get("/v1/items/does-not-exist", headers=admin)
    after = _samples(client)
    route = {"method": "POST", "route": "/v1/classify", "status": "200"}
    assert _value(after, "rac_http_request_duration_seconds_count", **route) == \
        _value(before, "rac_http_request_duration_seconds_count", **route) + 1
    missing = {"method": "GET", "route": "/v1/items/{item_id}", "status": "404"}
    assert _value(after, "rac_http_request_duration_seconds_count", **missing) >= 1
    model = decision["model_id"]
    assert _value(after, "rac_judge_questions_total", model=model) == \
        _value(before, "rac_judge_questions_total", model=model) + decision["judge_calls"]
    status = decision["status"]
    assert _value(after, "rac_decisions_total", status=status) == \
        _value(before, "rac_decisions_total", status=status) + 1
