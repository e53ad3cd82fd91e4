"""Label Studio's ML-backend endpoints, one backend per label schema.

Connect it in Label Studio (Settings > Model, or `POST /api/ml`) with the URL
`http://<host>:8000/label-studio/<schema>` and Basic Auth whose password is an API key of role
`editor` or higher (any user name); the key decides the project. Label Studio calls `/health`,
`/setup` and `/predict` under that URL, and its webhooks go to `/webhook` (they need the key as a
header on the webhook, since Label Studio sends no Basic Auth with webhooks).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Path, Request
from fastapi.responses import JSONResponse

from app.auth.models import Role
from app.auth.service import Principal, authenticate
from app.deps import RuntimeDep, SessionDep
from app.errors import Forbidden, Unauthorized
from app.label_schemas.format import SchemaName
from app.label_studio import service
from app.label_studio.api import (
    HealthOut,
    PredictIn,
    PredictOut,
    SetupIn,
    SetupOut,
    WebhookIn,
    WebhookOut,
)
from app.rac.decision import Strategy
from app.scorer.worker import wake_refitter

endpoints = APIRouter(tags=["label-studio"])
SchemaPath = Annotated[SchemaName, Path(description="The label schema this backend serves "
                                                     "(created from the labeling config).")]


def key_from_header(authorization: str | None) -> str:
    """The API key from `Bearer <key>` or from Basic Auth (the password; the user is ignored,
    or is the key itself when the password is empty)."""
    scheme, _, value = (authorization or "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("the Basic Auth credentials are not valid base64") from None
        if password or user:
            return password or user
    raise Unauthorized("send an API key as Basic Auth password (Label Studio's ML backend "
                       "'Basic Authentication' option) or as 'Authorization: Bearer <key>'")


def editor(session: SessionDep,
           authorization: Annotated[str | None, Header()] = None) -> Principal:
    principal = authenticate(session, key_from_header(authorization))
    if not principal.role.allows(Role.editor):
        raise Forbidden("a Label Studio backend stores tasks and reviews: it needs a key of role "
                        f"editor (or higher); this key has {principal.role.value}")
    return principal


LabelStudioKey = Annotated[Principal, Depends(editor)]


@endpoints.get("/health", response_model=HealthOut)
@endpoints.get("/", response_model=HealthOut, include_in_schema=False)
def health(schema_name: SchemaPath, strategy: Strategy | None = None) -> HealthOut:
    """Label Studio's liveness check (it waits 1 s); names no data, so it needs no key."""
    return HealthOut(model_class=service.MODEL_CLASS)


@endpoints.post("/setup", response_model=SetupOut)
def setup(schema_name: SchemaPath, body: SetupIn, principal: LabelStudioKey,
          session: SessionDep, runtime: RuntimeDep, strategy: Strategy | None = None) -> SetupOut:
    """Called when Label Studio connects and before each batch of predictions: the labeling
    config becomes the schema (a new version only if it changed)."""
    connected = service.connect(session, principal, schema_name, body.labeling_config)
    return SetupOut(model_version=service.model_version(session, runtime, connected, strategy))


@endpoints.post("/predict", response_model=PredictOut)
def predict(schema_name: SchemaPath, body: PredictIn, principal: LabelStudioKey,
            session: SessionDep, runtime: RuntimeDep,
            strategy: Strategy | None = None) -> PredictOut:
    """One prediction per task, in order: the label as a `choices` result, the calibrated
    confidence as `score`. Tasks are stored as items and their decisions as annotations."""
    return PredictOut(results=service.predict(session, runtime, principal, schema_name, body,
                                              strategy))


@endpoints.post("/webhook", status_code=201, response_model=WebhookOut,
                responses={200: {"description": "An event this backend does not learn from."}})
def webhook(schema_name: SchemaPath, body: WebhookIn, principal: LabelStudioKey,
            session: SessionDep, runtime: RuntimeDep, request: Request,
            background: BackgroundTasks,
            strategy: Strategy | None = None) -> WebhookOut | JSONResponse:
    """Annotations created or updated in Label Studio become reviews (with the annotator and
    time); deleted ones are retracted; START_TRAINING refits the calibrator if due. Like a
    review through the API, each wakes the learnt scorer's refitter once it is committed."""
    result = service.handle_webhook(session, runtime, principal, schema_name, body, strategy)
    if result is None:
        return JSONResponse({"status": "Unknown event"}, status_code=200)
    background.add_task(wake_refitter, request.app)
    return WebhookOut(result=result, status="ok")


# The backend URL is `/label-studio/<schema>`, or `/label-studio/<schema>/strategy/<strategy>`
# to pick the engine's strategy (e.g. `retrieval`, the fast first pass with no LLM): Label
# Studio appends /predict etc. to the URL and drops any query string.
router = APIRouter()
router.include_router(endpoints, prefix="/label-studio/{schema_name}")
router.include_router(endpoints, prefix="/label-studio/{schema_name}/strategy/{strategy}")
