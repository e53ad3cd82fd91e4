"""The review page and its dashboard: HTML rendered on the server, a little JavaScript, and small
page endpoints under /review/api that call the same review services as the JSON API.

Handlers read load → authorise → call service → render; queries live in the services and
repositories. The page authenticates with a browser session (see `auth`), not a bearer header.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Form, Header, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from app import __version__
from app.auth.models import Role
from app.auth.service import Principal
from app.config import Settings
from app.deps import RuntimeDep, SessionDep
from app.errors import Forbidden, Unauthorized
from app.items import repository as items
from app.label_schemas import repository as schemas
from app.rac.evaluation import point_at
from app.review import service
from app.review.api import ReviewQueueOut
from app.review.queue import queue_out
from app.review.undo import undo_review
from app.review_page import auth
from app.review_page.api import ClaimIn, CountsOut, PageReviewIn, ReleaseIn, UndoneOut
from app.review_page.chart import precision_coverage_chart
from app.scorer.worker import wake_refitter

HERE = Path(__file__).resolve().parent
SIGN_IN = "/review/sign-in"
# Sent by the page's own fetch() calls. A cross-site form cannot set a header and a cross-site
# fetch with one needs a CORS preflight this app never grants, so the header (on top of the
# SameSite=Lax cookie) keeps other sites from acting with a reviewer's session.
PAGE_HEADER = "X-Requested-With"
PAGE_HEADER_VALUE = "rac-review-page"
# Everything the page loads comes from here; inline scripts are not allowed, so HTML injected
# through an item's text could not run even if escaping failed.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
SESSION_HOURS = 12

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["pct"] = lambda v: "—" if v is None else f"{v:.0%}"
templates.env.globals["Role"] = Role
templates.env.filters["num"] = lambda v, d=2: "—" if v is None else f"{v:.{d}f}"

router = APIRouter(prefix="/review", include_in_schema=False)


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the page, its static files and the signed session cookie on the app."""
    app.add_middleware(
        SessionMiddleware, secret_key=settings.secret_key, session_cookie="rac_review",
        max_age=SESSION_HOURS * 3600, path="/review", same_site="lax",
        https_only=settings.env == "production")
    app.mount("/review/static", StaticFiles(directory=HERE / "static"), name="review_static")
    app.include_router(router)


# --- who is signed in ---------------------------------------------------------------------------

def page_principal(request: Request, session: SessionDep) -> Principal | None:
    stored = request.session.get(auth.SESSION_KEY)
    if stored is None:
        return None
    principal = auth.principal_from(session, stored)
    if principal is None:  # the key was revoked (or the cookie is not ours): end the session
        request.session.clear()
    return principal


PageUser = Annotated[Principal | None, Depends(page_principal)]


def page_caller(principal: PageUser,
                x_requested_with: Annotated[str | None, Header()] = None) -> Principal:
    """For the page's own API calls: a live session and the page's header."""
    if principal is None:
        raise Unauthorized(f"sign in at {SIGN_IN}")
    if x_requested_with != PAGE_HEADER_VALUE:
        raise Forbidden(f"page endpoints answer the review page only ({PAGE_HEADER} missing)")
    return principal


def page_role(role: Role):  # type: ignore[no-untyped-def]
    """Dependency factory: a page call by a session whose key has at least `role`."""

    def check(principal: Annotated[Principal, Depends(page_caller)]) -> Principal:
        if not principal.role.allows(role):
            raise Forbidden(f"this needs the {role.value} role (or higher); you signed in "
                            f"with a {principal.role.value} key")
        return principal

    return check


PageReviewer = Annotated[Principal, Depends(page_role(Role.reviewer))]


def _render(request: Request, name: str, context: dict[str, Any],
            status_code: int = 200) -> HTMLResponse:
    context = {"version": __version__, "csrf_token": auth.csrf_token(request.session), **context}
    return templates.TemplateResponse(request, name, context,
                                      status_code=status_code, headers=SECURITY_HEADERS)


def _to_sign_in() -> RedirectResponse:
    return RedirectResponse(SIGN_IN, status_code=303)


# --- sign-in and sign-out -----------------------------------------------------------------------

@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, principal: PageUser) -> Response:
    if principal is not None:
        return RedirectResponse("/review", status_code=303)
    return _render(request, "sign_in.html", {"error": None})


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(request: Request, session: SessionDep,
            key: Annotated[str, Form(max_length=500)] = "",
            csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    if not auth.csrf_ok(request.session, csrf):
        # A form posted from another site (or a stale tab): show a fresh form instead.
        return _render(request, "sign_in.html",
                       {"error": "the sign-in form expired or came from another site; "
                                 "sign in again"}, status_code=403)
    try:
        _, stored = auth.sign_in(session, key.strip(), SESSION_HOURS)
    except (Unauthorized, Forbidden) as exc:
        # The form is shown again empty: the key is never echoed back into the page.
        return _render(request, "sign_in.html", {"error": exc.detail},
                       status_code=exc.status_code)
    auth.sign_out(session, request.session.get(auth.SESSION_KEY))  # a session it replaces
    session.commit()
    request.session.clear()  # a new CSRF token with the new session
    request.session[auth.SESSION_KEY] = stored
    return RedirectResponse("/review", status_code=303)


@router.post("/sign-out")
def sign_out(request: Request, session: SessionDep,
             csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    if not auth.csrf_ok(request.session, csrf):
        raise Forbidden("the sign-out form expired or came from another site: reload the page "
                        "and sign out again")
    auth.sign_out(session, request.session.get(auth.SESSION_KEY))
    session.commit()
    request.session.clear()
    return _to_sign_in()


# --- pages --------------------------------------------------------------------------------------

@router.get("", response_class=HTMLResponse)
def review_page(request: Request, principal: PageUser, session: SessionDep,
                schema: Annotated[str | None, Query(max_length=100)] = None) -> Response:
    if principal is None:
        return _to_sign_in()
    all_schemas = schemas.list_schemas(session, principal.project_id)
    if schema is None and len(all_schemas) == 1:
        schema = all_schemas[0].name  # one schema: nothing to choose
    chosen = next((s for s in all_schemas if s.name == schema), None)
    context: dict[str, Any] = {"page": "review", "principal": principal, "schemas": all_schemas,
                               "schema": chosen, "error": None, "labels": [],
                               "remaining": 0, "reviewed": 0, "schema_version": None}
    if schema is not None and chosen is None:
        context["error"] = f"There is no label schema named “{schema}” in this project."
        return _render(request, "review.html", context, status_code=404)
    if chosen is not None and not principal.role.allows(Role.reviewer):
        # A viewer reads: the schema's dashboard is what this key can open.
        return RedirectResponse(f"/review/dashboard/{chosen.name}", status_code=303)
    if chosen is not None:
        version = schemas.get_version(session, chosen)
        context["schema_version"] = version
        context["labels"] = [{"name": x["name"], "description": x["description"],
                              "examples": x.get("examples", [])[:5]}
                             for x in version.content["labels"]]
        context["remaining"], context["reviewed"] = service.queue_counts(session, chosen)
    return _render(request, "review.html", context)


@router.get("/dashboard/{name}", response_class=HTMLResponse)
def dashboard(request: Request, name: str, principal: PageUser, session: SessionDep,
              runtime: RuntimeDep) -> Response:
    if principal is None:
        return _to_sign_in()
    label_schema = schemas.find_schema(session, principal.project_id, name)
    all_schemas = schemas.list_schemas(session, principal.project_id)
    if label_schema is None:
        return _render(request, "review.html", {
            "principal": principal, "schemas": all_schemas, "schema": None, "labels": [],
            "error": f"There is no label schema named “{name}” in this project.",
            "remaining": 0, "reviewed": 0}, status_code=404)
    cutoff = runtime.settings.engine.cutoff
    curve = service.reviewed_curve(session, label_schema)
    at_cutoff = point_at(curve, cutoff)
    return _render(request, "dashboard.html", {
        "page": "dashboard", "principal": principal, "schemas": all_schemas, "schema": label_schema,
        "stats": service.stats(session, label_schema, cutoff), "cutoff": cutoff,
        "curve": curve, "at_cutoff": at_cutoff,
        "chart": precision_coverage_chart(curve, at_cutoff)})


# --- the page's API -----------------------------------------------------------------------------

@router.post("/api/claim", response_model=ReviewQueueOut, response_model_by_alias=True)
def claim(body: ClaimIn, principal: PageReviewer, session: SessionDep,
          runtime: RuntimeDep) -> ReviewQueueOut:
    label_schema = schemas.get_schema(session, principal.project_id, body.schema_name)
    leased = service.claim(session, principal, label_schema, body.limit,
                           runtime.settings.review_lease_seconds, exclude=body.exclude)
    return queue_out(session, label_schema, leased, runtime.settings.engine.cutoff)


@router.post("/api/review", response_model=CountsOut)
def review(body: PageReviewIn, principal: PageReviewer, session: SessionDep,
           runtime: RuntimeDep, request: Request, background: BackgroundTasks) -> CountsOut:
    item = items.get_item(session, principal.project_id, body.item)
    result = service.review(session, runtime, principal, item, body.schema_name, body.label,
                            body.note, body.labels)
    background.add_task(wake_refitter, request.app)
    remaining, reviewed = service.queue_counts(session, result.schema)
    return CountsOut(remaining=remaining, reviewed=reviewed)


@router.post("/api/undo", response_model=UndoneOut, response_model_by_alias=True)
def undo(body: ReleaseIn, principal: PageReviewer, session: SessionDep,
         runtime: RuntimeDep) -> UndoneOut:
    item = items.get_item(session, principal.project_id, body.item)
    undone = undo_review(session, principal, item, body.schema_name,
                         runtime.settings.review_lease_seconds)
    back = [undone.restored] if undone.restored and undone.restored.state.status != "reviewed" \
        else []
    out = queue_out(session, undone.schema, back, runtime.settings.engine.cutoff)
    return UndoneOut(item=out.items[0] if out.items else None, remaining=out.remaining,
                     reviewed=out.reviewed)


@router.post("/api/open", response_model=ReviewQueueOut, response_model_by_alias=True)
def open_item(body: ReleaseIn, principal: PageReviewer, session: SessionDep,
              runtime: RuntimeDep) -> ReviewQueueOut:
    """One item chosen in the items browser, leased to the caller and shown before the queue."""
    label_schema = schemas.get_schema(session, principal.project_id, body.schema_name)
    item = items.get_item(session, principal.project_id, body.item)
    leased = service.open_item(session, principal, label_schema, item,
                               runtime.settings.review_lease_seconds)
    return queue_out(session, label_schema, [leased], runtime.settings.engine.cutoff)


@router.post("/api/release", response_model=CountsOut)
def release(body: ReleaseIn, principal: PageReviewer, session: SessionDep) -> CountsOut:
    item = items.get_item(session, principal.project_id, body.item)
    service.release(session, principal, item, body.schema_name)
    label_schema = schemas.get_schema(session, principal.project_id, body.schema_name)
    remaining, reviewed = service.queue_counts(session, label_schema)
    return CountsOut(remaining=remaining, reviewed=reviewed)
