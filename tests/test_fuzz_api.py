"""Property-based fuzzing of every operation in the OpenAPI document: no response is a 5xx.

Schemathesis generates requests from the schema (valid and invalid bodies, parameters and
headers); three in four are sent with a valid admin key so generated data reaches the handlers.
RAC_FUZZ_EXAMPLES sets how many cases per operation (default 25).
"""

from __future__ import annotations

import os
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import SCHEMAS_DIR, bearer, new_key

EXAMPLES = int(os.environ.get("RAC_FUZZ_EXAMPLES", "25"))


def test_no_operation_answers_5xx(client, session_factory):
    admin = bearer(new_key(session_factory, "fuzz", "admin"))
    # Some real data, so generated requests can also hit existing rows.
    client.post("/v1/schemas", content=(SCHEMAS_DIR / "demo.yaml").read_bytes(),
                headers={**admin, "Content-Type": "application/yaml"})
    client.post("/v1/items", json=[{"id": "a", "text": "I was charged twice"}], headers=admin)
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:
        @given(case=operation.as_strategy(), with_key=st.sampled_from([True, True, True, False]))
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case, with_key: bool) -> None:
            if with_key:  # replace whatever Authorization the generator made up
                case.headers = {**(case.headers or {}), **admin}
            response = case.call()
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.body!r:.200} -> "
                                f"{response.status_code} {response.text[:300]}")
            elif response.status_code >= 400:
                assert set(response.json()) >= {"error", "detail"}, response.text

        fuzz()

    print(f"fuzzed {len(operations)} operations, {sum(statuses.values())} requests: "
          f"{dict(sorted(statuses.items()))}")
    assert not failures, "\n".join(failures[:20])
