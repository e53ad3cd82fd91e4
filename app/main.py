"""The FastAPI application. `create_app()` wires routers; the lifespan builds the heavy objects
(database engine, engine runtime) once per process and starts the job workers it owns."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import __version__
from app.auth.routes import router as keys_router
from app.body_limit import BodyLimitMiddleware
from app.calibration.routes import router as calibration_router
from app.calibration.service import refit_for_new_scorer as refit_calibrator_for_new_scorer
from app.config import Settings, get_settings
from app.datasets import upload as dataset_upload
from app.datasets.routes import router as datasets_router
from app.db import (
    current_revision,
    head_revision,
    make_engine,
    make_session_factory,
    upgrade_database,
)
from app.deps import key_before_body
from app.errors import (
    ServiceUnavailable,
    UnexpectedErrorMiddleware,
    error_body,
    install_error_handlers,
)
from app.exports.routes import router as exports_router
from app.items.routes import router as items_router
from app.jobs.dispatch import Dispatcher, OrphanSweeper
from app.jobs.routes import router as jobs_router
from app.jobs.runner import JobRunner
from app.judges.routes import router as judges_router
from app.label_schemas.routes import router as schemas_router
from app.label_studio.routes import router as label_studio_router
from app.labelling.prior_fitter import PriorFitter
from app.labelling.routes import router as labelling_router
from app.logs import configure_logging
from app.metrics import REQUEST_SECONDS, observe_judge
from app.openapi import ErrorBody, build_openapi
from app.review.routes import router as review_router
from app.review_page import workbench
from app.review_page.routes import install as install_review_page
from app.runtime import Runtime
from app.scorer.worker import ScorerRefitter

log = logging.getLogger("rac")

REVIEW_PAGE_MAX_BODY_BYTES = 1024 * 1024
"""The review page sends a key at sign-in and small JSON (at most 1,000 excluded item ids)."""


def _prepare_database(settings: Settings, engine: Any) -> None:
    if settings.auto_upgrade:
        upgrade_database(engine)
        return
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise RuntimeError(
            f"the database is at migration {current!r}, the code expects {head!r}: "
            "run `rac db upgrade` (or set RAC_DB_AUTO_UPGRADE=true)"
        )


def _start_job_workers(app: FastAPI, settings: Settings
                       ) -> tuple[JobRunner | None, OrphanSweeper | None]:
    """The embedded default runs jobs on a thread of this process; with Celery the API only
    queues chunks (and re-queues those of workers that died)."""
    runner = sweeper = None
    if settings.queue == "inprocess" and settings.jobs.inprocess_worker:
        runner = JobRunner(app.state.session_factory, app.state.runtime)
        runner.start()
    app.state.dispatcher = Dispatcher(settings, wake=runner.wake if runner else None)
    if settings.queue == "celery":
        sweeper = OrphanSweeper(app.state.session_factory, app.state.dispatcher,
                                every_seconds=max(5.0, settings.jobs.lease_seconds / 2))
        sweeper.start()
    return runner, sweeper


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_format)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.resolved_database_url)
        _prepare_database(settings, engine)
        app.state.engine = engine
        app.state.session_factory = make_session_factory(engine)
        app.state.runtime = Runtime.from_settings(settings)
        observe_judge(app.state.runtime.judge)
        runner, sweeper = _start_job_workers(app, settings)
        # Each lifespan stops the threads it started, not whatever app.state holds by then: a
        # lifespan entered again on the same app (schemathesis' ASGI calls in test_fuzz_api.py)
        # replaced app.state's refitter, and the first one kept running after the test's
        # database was dropped ("relation exemplars does not exist" after pytest's summary).
        refitter = app.state.scorer_refitter = ScorerRefitter(
            app.state.session_factory, app.state.runtime,
            after_refit=partial(refit_calibrator_for_new_scorer, app.state.session_factory,
                                app.state.runtime))
        refitter.start()
        prior_fitter = app.state.prior_fitter = PriorFitter(app.state.session_factory,
                                                            app.state.runtime)
        prior_fitter.start()
        try:
            yield
        finally:
            refitter.stop()
            prior_fitter.stop()
            if runner is not None:
                runner.stop()
            if sweeper is not None:
                sweeper.stop()
            engine.dispose()

    app = FastAPIOffline(  # Swagger UI and ReDoc served from this process, no CDN
        title="RAC Labeller",
        version=__version__,
        description="Label text with open-source LLMs: Retrieval Augmented Classification.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    # Added first, so it runs last, right before the routes: no middleware reads bodies, and
    # its 413 raised while a route reads the body then meets the route's error handling
    # directly (the BaseHTTPMiddleware layers would wrap it in an exception group).
    app.add_middleware(BodyLimitMiddleware, default=settings.max_body_bytes,
                       by_prefix={"/v1/datasets": lambda: dataset_upload.MAX_UPLOAD_BYTES,
                                  "/review": REVIEW_PAGE_MAX_BODY_BYTES,
                                  "/review/api/datasets":
                                      lambda: dataset_upload.MAX_UPLOAD_BYTES},
                       gate=key_before_body)
    _install_metrics(app)
    _refuse_nul_in_urls(app)

    @app.get("/healthz", tags=["health"], responses={
        503: {"model": ErrorBody, "description": "The database did not answer."}})
    def healthz() -> dict[str, str]:
        """Liveness and database check (no key needed): 200 when the database answers, else 503."""
        from sqlalchemy import text

        try:
            with app.state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # the point of a health check is to say so, not to crash
            raise ServiceUnavailable(f"database unreachable: {type(exc).__name__}") from None
        return {"status": "ok", "version": __version__}

    @app.get("/v1/schema-format", tags=["schemas"])
    def schema_format() -> dict[str, Any]:
        """The JSON Schema of the label-schema format (public: it describes no data)."""
        from app.label_schemas.format import json_schema

        return json_schema()

    for router in (keys_router, schemas_router, items_router, labelling_router, review_router,
                   jobs_router, datasets_router, exports_router, calibration_router,
                   judges_router, label_studio_router):
        app.include_router(router)
    install_review_page(app, settings)  # the review page for people, with its session cookie
    app.include_router(workbench.router)  # after the review page, whose helpers it uses
    app.add_middleware(UnexpectedErrorMiddleware)  # outermost: it sees what every layer raised
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app


def _install_metrics(app: FastAPI) -> None:
    @app.middleware("http")
    async def _time_requests(request: Request,
                             call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")  # a template, never the raw path
        REQUEST_SECONDS.labels(request.method, template, str(response.status_code)).observe(
            time.perf_counter() - started)
        return response

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _refuse_nul_in_urls(app: FastAPI) -> None:
    # PostgreSQL cannot compare text with U+0000: a NUL in a path or query parameter is refused
    # here, once, instead of in every handler (bodies are checked by the API models).
    @app.middleware("http")
    async def _check(request: Request,
                     call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        query = unquote(request.scope.get("query_string", b"").decode("latin-1"))
        if "\x00" in request.url.path or "\x00" in query:
            return JSONResponse(error_body("BadRequest", "the URL contains a NUL character"),
                                status_code=400)
        return await call_next(request)
