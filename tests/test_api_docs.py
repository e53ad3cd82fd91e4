"""The API documentation: complete (summary, description, tag and the real error responses of
every operation), true (the documented error body is the one the API sends), and readable with
no internet access (Swagger UI and ReDoc in a real browser with every outside request blocked).
"""

from __future__ import annotations

from typing import Any

import pytest

from app.openapi import ErrorBody
from tests.helpers import bearer, new_key
from tests.test_review_page import browser, live_server  # noqa: F401  (fixtures)

ERROR_REF = "#/components/schemas/ErrorBody"


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in schema["paths"].items()
            for method, op in ops.items()]


def test_every_operation_is_documented_with_its_errors(client):
    schema = client.get("/openapi.json").json()
    operations = _operations(schema)
    assert len(operations) >= 30
    for method, path, op in operations:
        name = f"{method} {path}"
        assert op.get("tags"), name
        assert op.get("description"), name
        summary = op["summary"]
        # FastAPI's fallback is the function name title-cased ("List Jobs"): a sentence is meant
        assert summary != summary.title() or len(summary.split()) > 4, (name, summary)
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"]["$ref"] == ERROR_REF
        if path.startswith("/v1/") and path != "/v1/schema-format":
            assert "401" in op["responses"], name
        if "{" in path:
            assert "404" in op["responses"], name
        if "requestBody" in op:
            assert {"413", "422"} <= set(op["responses"]), name
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    by_name = {f"{m} {p}": op for m, p, op in operations}
    assert "409" in by_name["POST /v1/items"]["responses"]
    assert "403" in by_name["POST /v1/schemas"]["responses"]
    assert "403" not in by_name["GET /v1/jobs"]["responses"]  # a viewer may list jobs


def test_the_documented_error_body_is_what_the_api_sends(client, session_factory):
    viewer = bearer(new_key(session_factory, "acme", "viewer"))
    editor = bearer(new_key(session_factory, "acme", "editor"))
    answers = {
        401: client.get("/v1/jobs"),
        403: client.post("/v1/schemas", json={"name": "x", "labels": []}, headers=viewer),
        404: client.get("/v1/jobs/job_nope", headers=viewer),
        409: (client.post("/v1/items", json=[{"id": "a", "text": "one"}], headers=editor),
              client.post("/v1/items", json=[{"id": "a", "text": "two"}], headers=editor))[1],
        422: client.post("/v1/jobs", json={"schema": "s", "top_k": 0, "items": {}},
                         headers=editor),
    }
    fields = set(ErrorBody.model_fields)
    for status, response in answers.items():
        assert response.status_code == status, (status, response.text)
        body = response.json()
        ErrorBody.model_validate(body)
        assert set(body) <= fields and body["detail"], (status, body)
    assert answers[422].json()["errors"][0]["loc"] == ["body", "top_k"]


def _blocking_outside_requests(page: Any, base: str) -> list[str]:
    """Abort every request that leaves the server under test; return what was tried."""
    tried: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(base):
            r.continue_()
        else:
            tried.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return tried


@pytest.mark.slow
def test_swagger_ui_and_redoc_render_offline(live_server, browser, db):  # noqa: F811
    if db.backend != "sqlite":
        pytest.skip("one database is enough: this is about static assets")
    from playwright.sync_api import expect

    context = browser.new_context()
    try:
        page = context.new_page()
        tried = _blocking_outside_requests(page, live_server)
        page.goto(f"{live_server}/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("RAC Labeller")
        expect(page.locator(".opblock-summary-path").filter(has_text="/v1/jobs/{job_id}")
               .first).to_be_visible()
        assert tried == [], tried
        page.goto(f"{live_server}/redoc")
        expect(page.locator("h1").first).to_contain_text("RAC Labeller")
        expect(page.get_by_text("Queue a batch job over a dataset").first).to_be_attached()
        # ReDoc's bundle links its "powered by" logo from its CDN: an image, blocked here, and
        # the page renders without it. Nothing else may leave.
        assert all(url.endswith("logo-mini.svg") for url in tried), tried
    finally:
        context.close()
