"""The OpenAPI document: every operation with a summary (the first sentence of its docstring), a
description, a tag, and the error responses it can really give, all with the one error body the
handlers in `app/errors.py` send. Swagger UI and ReDoc are served from this process (assets from
the `fastapi-offline` package), so the docs work on a machine with no internet access."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field

from app.auth.models import Role
from app.deps import get_principal
from app.label_schemas.format import LabelDoc, LabelSchemaDoc


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description="Where: e.g. `[\"body\", \"labels\", 3, \"name\"]`.")
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error response: the error class, what is wrong, and for request validation each
    field that failed."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="The error class: Unauthorized, Forbidden, NotFound, "
                       "Conflict, PayloadTooLarge, InvalidInput, RequestValidationError, ...")
    detail: str = Field(description="What is wrong, naming the field, id or limit.")
    errors: list[ValidationIssue] | None = Field(
        None, description="Only with RequestValidationError: each failing field.")
    problems: list[dict[str, str]] | None = Field(
        None, description="Only for a refused label schema: each problem, naming the label "
        "and field.")
    conflicting_ids: list[str] | None = Field(
        None, description="Only for a 409 from POST /v1/items: the ids posted before with "
        "another text (up to 1,000).")


_ERRORS = {
    400: "The body could not be read (not JSON, not UTF-8, ...).",
    401: "No API key, or an unknown or revoked one.",
    403: "The key's role is too low for this operation.",
    404: "Not found in the key's project.",
    413: "The body is larger than this operation accepts.",
    422: "The request is invalid; `detail` names the field (and `errors` lists each one).",
}

_CONFLICTS = {
    ("POST", "/v1/items"): "An id was posted before with a different text (nothing stored).",
    ("POST", "/v1/schemas"): "The schema was changed by a concurrent push; push again.",
    ("POST", "/v1/items/{item_id}/review"): "Another reviewer holds the item's lease.",
    ("POST", "/v1/schemas/{name}/judge/train"): "A judge is being trained already.",
    ("POST", "/v1/jobs"): "The dataset is not complete (still uploading, or its upload failed).",
    ("POST", "/v1/schemas/{name}/judges/{version}/activate"): "That judge is not ready.",
}

# How one operation's answer feeds the next (OpenAPI links): create -> read -> review -> undo.
# Documentation for clients, and the paths the stateful fuzz test walks.
_ITEM_PATH = {"item_id": "$response.body#/id"}
_LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("post", "/v1/items", "201"): {
        "GetItem": ("get", "/v1/items/{item_id}", {"item_id": "$response.body#/ids/0"}),
        "ReviewItem": ("post", "/v1/items/{item_id}/review",
                       {"item_id": "$response.body#/ids/0"}),
    },
    ("get", "/v1/items/{item_id}", "200"): {
        "ReviewItem": ("post", "/v1/items/{item_id}/review", _ITEM_PATH),
        "ReleaseItem": ("post", "/v1/items/{item_id}/release", _ITEM_PATH),
    },
    ("post", "/v1/items/{item_id}/review", "200"): {
        "UndoReview": ("delete", "/v1/items/{item_id}/review", _ITEM_PATH),
        "GetItem": ("get", "/v1/items/{item_id}", _ITEM_PATH),
    },
}

_NAMED_IN_REQUEST = {"schema", "schema_name", "dataset", "job", "item_id"}
"""Query or body fields that name a stored object: an unknown one is a 404."""


def _required_role(route: Any) -> Role | None:
    """The role the route's dependencies demand (None: no key needed)."""
    found: Role | None = None
    authenticated = False
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        if dependant.call is get_principal:
            authenticated = True
        role = getattr(dependant.call, "required_role", None)
        if role is not None:
            found = role
        stack.extend(dependant.dependencies)
    return found or (Role.viewer if authenticated else None)


def _names_an_object(route: Any) -> bool:
    if route.dependant.path_params:
        return True
    fields = {p.name for p in route.dependant.query_params}
    for param in route.dependant.body_params:
        model = getattr(param.field_info, "annotation", None)
        fields |= set(getattr(model, "model_fields", {}) or {param.name})
    return bool(fields & _NAMED_IN_REQUEST)


def _summary(route: Any) -> str | None:
    """The docstring's first sentence, cut at its first clause when that is long."""
    paragraph = " ".join((route.description or "").strip().split("\n\n")[0].split())
    if not paragraph:
        return None
    first = re.split(r"(?<=\.)\s", paragraph, maxsplit=1)[0].rstrip(".")
    if len(first) > 70:
        cuts = [i for sep in (": ", "; ", " (", " — ", ", ") if (i := first.find(sep)) >= 15]
        first = first[:min(cuts)] if cuts else first
    return first


def _error_responses(route: Any, method: str, operation: dict[str, Any]) -> dict[int, str]:
    codes: dict[int, str] = {}
    role = _required_role(route)
    if role is not None:
        codes[401] = _ERRORS[401]
        if role != Role.viewer:
            codes[403] = f"{_ERRORS[403]} It needs {role.value} or higher."
    if _names_an_object(route):
        codes[404] = _ERRORS[404]
    if (method, route.path_format) in _CONFLICTS:
        codes[409] = _CONFLICTS[(method, route.path_format)]
    has_body = "requestBody" in operation
    if has_body:
        codes[400] = _ERRORS[400]
        codes[413] = _ERRORS[413]
    if has_body or operation.get("parameters"):
        codes[422] = _ERRORS[422]
    return codes


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (LabelDoc, LabelSchemaDoc, ErrorBody):
        components[model.__name__] = model.model_json_schema(
            ref_template="#/components/schemas/{model}")
        for name, sub in components[model.__name__].pop("$defs", {}).items():
            components.setdefault(name, sub)
    # FastAPI's default 422 model is not what the handlers send: ErrorBody replaces it.
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    # Routes seen as the schema generator sees them: included routers with their prefixes.
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            summary = route.summary or _summary(route)
            if summary:
                operation["summary"] = summary
            responses = operation.setdefault("responses", {})
            for code, description in _error_responses(route, method, operation).items():
                responses[str(code)] = {"description": description, "content": error_ref}
    _add_links(schema["paths"])
    app.openapi_schema = schema
    return schema


def _add_links(paths: dict[str, Any]) -> None:
    for (method, path, status), links in _LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        for name, (to_method, to_path, parameters) in links.items():
            target = paths.get(to_path, {}).get(to_method)
            if target is not None and "operationId" in target:
                response.setdefault("links", {})[name] = {
                    "operationId": target["operationId"], "parameters": parameters}
