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


# --- deep, huge and odd JSON bodies -------------------------------------------------------------

# Every operation that reads a JSON body, with a path that exists once `_seed` has run.
JSON_BODY_PATHS = [
    ("POST", "/v1/items"), ("POST", "/v1/classify"), ("POST", "/v1/schemas"),
    ("POST", "/v1/items/a/review"), ("POST", "/v1/jobs"), ("POST", "/v1/keys"),
    ("POST", "/v1/schemas/support-demo/calibration"),
]


def _nested(depth: int, inner: str, kind: str) -> str:
    if kind == "list":
        return "[" * depth + inner + "]" * depth
    return '{"a":' * depth + inner + "}" * depth


@st.composite
def odd_json(draw: st.DrawFn) -> bytes:
    """Raw bodies a JSON parser and the validators behind it must survive: nesting from a few
    levels to far past the recursion limit, strings of megabytes, numbers beyond every integer
    and float type, lone surrogates and NUL escapes, NaN and Infinity, duplicate keys, truncated
    and non-UTF-8 documents, and these placed where a real field is expected."""
    scalar = draw(st.sampled_from([
        "1e400", "-1e400", "NaN", "Infinity", "-Infinity", str(2**64), str(-2**63 - 1),
        "1" * 5000, "-0", "0.0000000000000000000000001e-400", '"\\ud800"', '"\\u0000"',
        '"a\\u0000b"', "null", "true", '""', "[]", "{}", '"' + "x" * 2_000_000 + '"',
        '"\\udfff\\ud800"', '"' + "é" * 100_000 + '"']))
    depth = draw(st.sampled_from([3, 33, 255, 600, 1_000, 5_000, 100_000]))
    nested = _nested(depth, scalar, draw(st.sampled_from(["list", "dict"])))
    field = draw(st.sampled_from(["items", "text", "metadata", "schema", "label", "labels",
                                  "name", "id", "top_k", "item_id", "dataset", "role"]))
    shape = draw(st.sampled_from(["bare", "in_field", "in_item", "duplicate", "truncated",
                                  "bytes"]))
    if shape == "bare":
        return nested.encode()
    if shape == "in_field":
        return f'{{"schema": "support-demo", "text": "x", "{field}": {nested}}}'.encode()
    if shape == "in_item":
        return f'{{"items": [{{"id": "odd", "text": "t", "metadata": {{"m": {nested}}}}}]}}' \
            .encode()
    if shape == "duplicate":
        return f'{{"{field}": 1, "{field}": {scalar}, "{field}": {nested}}}'.encode()
    if shape == "truncated":
        return nested.encode()[: draw(st.integers(1, max(1, len(nested) - 1)))]
    return b'{"text": "\xff\xfe\xc3(", "schema": "\x00"}'


def test_deep_huge_and_odd_json_bodies_never_answer_5xx(client, session_factory):
    admin = bearer(new_key(session_factory, "fuzz", "admin"))
    client.post("/v1/schemas", content=(SCHEMAS_DIR / "demo.yaml").read_bytes(),
                headers={**admin, "Content-Type": "application/yaml"})
    client.post("/v1/items", json=[{"id": "a", "text": "I was charged twice"}], headers=admin)
    statuses: Counter[int] = Counter()
    failures: list[str] = []

    @given(body=odd_json(), target=st.sampled_from(JSON_BODY_PATHS))
    @settings(max_examples=max(60, EXAMPLES * 4), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(body: bytes, target: tuple[str, str]) -> None:
        method, path = target
        response = client.request(method, path, content=body,
                                  headers={**admin, "Content-Type": "application/json"})
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(f"{method} {path} {body[:120]!r}... ({len(body)} bytes) -> "
                            f"{response.status_code} {response.text[:300]}")
        else:
            assert set(response.json()) >= {"error", "detail"} or response.is_success, \
                response.text[:300]

    fuzz()
    print(f"odd JSON: {sum(statuses.values())} requests: {dict(sorted(statuses.items()))}")
    assert not failures, "\n".join(failures[:20])


# --- stateful: create -> read -> review -> undo, along the OpenAPI links --------------------------

def test_linked_item_operations_never_answer_5xx(client, session_factory):
    """Schemathesis walks the links the OpenAPI document declares (POST /v1/items -> GET the
    item -> review it -> undo the review, or release it), each step fed the id the step before
    answered, so generated reviews reach items that exist.

    Every scenario starts in a project of its own (new key, schema pushed afresh): Hypothesis
    replays a scenario to shrink it, and a replay must meet the same state, or the links open
    to it differ (an item id that answered 201 answers 409 the second time) and Hypothesis
    stops with FlakyStrategyDefinition instead of reporting."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app) \
        .include(path_regex=r"^/v1/items")
    steps: Counter[tuple[str, str, int]] = Counter()
    failures: list[str] = []
    scenarios = iter(range(1_000_000))

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.admin = bearer(new_key(session_factory, f"fuzz-{next(scenarios)}", "admin"))
            pushed = client.post("/v1/schemas",
                                 content=(SCHEMAS_DIR / "demo.yaml").read_bytes(),
                                 headers={**self.admin, "Content-Type": "application/yaml"})
            assert pushed.status_code == 201, pushed.text

        def get_call_kwargs(self, case):  # type: ignore[no-untyped-def]
            return {"headers": self.admin}

        def validate_response(self, response, case, **kwargs):  # type: ignore[no-untyped-def]
            steps[(case.method, case.path, response.status_code)] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.body!r:.200} -> "
                                f"{response.status_code} {response.text[:300]}")

    Workflow.run(settings=settings(max_examples=max(10, EXAMPLES), stateful_step_count=6,
                                   deadline=None, database=None,
                                   suppress_health_check=list(HealthCheck)))
    print(f"stateful: {sum(steps.values())} requests: {dict(sorted(steps.items()))}")
    assert not failures, "\n".join(failures[:20])
    reached = {(method, path) for method, path, status in steps if status < 400}
    assert ("POST", "/v1/items") in reached and ("GET", "/v1/items/{item_id}") in reached
    reviews = sum(n for (method, path, _), n in steps.items()
                  if (method, path) == ("POST", "/v1/items/{item_id}/review"))
    assert reviews > 0, steps
