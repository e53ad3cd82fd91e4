from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response

from app.deps import Reviewer, RuntimeDep, SessionDep, Viewer
from app.items import repository as items
from app.label_schemas import repository as schemas
from app.review import service
from app.review.api import (
    LabelQualityOut,
    ReviewIn,
    ReviewOut,
    ReviewQueueOut,
    SchemaStatsOut,
    UndoOut,
)
from app.review.queue import queue_out
from app.review.undo import undo_review
from app.scorer.worker import wake_refitter

router = APIRouter(prefix="/v1", tags=["review"])


@router.get("/review", response_model=ReviewQueueOut, response_model_by_alias=True)
def review_queue(
    principal: Reviewer,
    session: SessionDep,
    runtime: RuntimeDep,
    schema: str = Query(min_length=1, max_length=100),
    limit: int = Query(10, ge=1, le=100),
    exclude: Annotated[list[str] | None, Query(
        max_length=1000, description="Item ids to leave out (e.g. ones you skipped).")] = None,
) -> ReviewQueueOut:
    """Lease the next items that need a person (no_match and needs_review), least confident
    first, with their candidate labels. A lease keeps other reviewers off the items until it
    expires (RAC_REVIEW_LEASE_SECONDS), the item is reviewed, or it is released."""
    label_schema = schemas.get_schema(session, principal.project_id, schema)
    leased = service.claim(session, principal, label_schema, limit,
                           runtime.settings.review_lease_seconds, exclude=exclude or ())
    return queue_out(session, label_schema, leased, runtime.settings.engine.cutoff)


@router.post("/items/{item_id}/review", response_model=ReviewOut, response_model_by_alias=True)
def review_item(item_id: str, body: ReviewIn, principal: Reviewer, session: SessionDep,
                runtime: RuntimeDep, request: Request, background: BackgroundTasks) -> ReviewOut:
    """Record the right label (or null: none of the labels) for an item. The item becomes
    ground truth and an exemplar of its label at once; the learnt scorer is refitted in the
    background."""
    item = items.get_item(session, principal.project_id, item_id)
    result = service.review(session, runtime, principal, item, body.schema_name, body.label,
                            body.note, body.labels)
    background.add_task(wake_refitter, request.app)
    return ReviewOut(id=item.external_id, schema_name=result.schema.name,
                     label=result.annotation.label, labels=result.annotation.labels,
                     status="reviewed", reviewer=principal.key_name,
                     reviewed_at=result.annotation.created_at, model_label=result.model_label)


@router.delete("/items/{item_id}/review", response_model=UndoOut,
               response_model_by_alias=True)
def undo_item_review(item_id: str, principal: Reviewer, session: SessionDep,
                     runtime: RuntimeDep,
                     schema: str | None = Query(None, min_length=1, max_length=100)) -> UndoOut:
    """Undo the item's current review (yours; an admin may undo anyone's): the review is
    deleted, the item gets back the decision it had before (back in the queue, leased to you,
    if that was the model's), and its exemplar leaves the label index."""
    item = items.get_item(session, principal.project_id, item_id)
    undone = undo_review(session, principal, item, schema, runtime.settings.review_lease_seconds)
    state = undone.restored.state if undone.restored else None
    return UndoOut(id=item.external_id, schema_name=undone.schema.name,
                   label=state.label if state else None, status=state.status if state else None)


@router.post("/items/{item_id}/release", status_code=204, response_class=Response)
def release_item(item_id: str, principal: Reviewer, session: SessionDep,
                 schema: str | None = Query(None, min_length=1, max_length=100)) -> Response:
    """Give back your lease on an item you will not review now (a skip): another reviewer may
    take it at once. Idempotent; someone else's lease is left alone."""
    item = items.get_item(session, principal.project_id, item_id)
    service.release(session, principal, item, schema)
    return Response(status_code=204)


@router.get("/schemas/{name}/stats", response_model=SchemaStatsOut,
            response_model_by_alias=True, tags=["schemas"])
def schema_stats(name: str, principal: Viewer, session: SessionDep,
                 runtime: RuntimeDep) -> SchemaStatsOut:
    """Counts by status, coverage, and — on items the model labelled and a person reviewed —
    agreement, per-label precision and recall, and the precision observed at the cutoff."""
    label_schema = schemas.get_schema(session, principal.project_id, name)
    cutoff = runtime.settings.engine.cutoff
    s = service.stats(session, label_schema, cutoff)
    return SchemaStatsOut(
        schema_name=label_schema.name, total=s.total, counts=s.counts, coverage=s.coverage,
        cutoff=cutoff, reviewed_model_decisions=s.reviewed_model_decisions,
        agreement=s.agreement, precision_at_cutoff=s.precision_at_cutoff,
        reviewed_at_cutoff=s.reviewed_at_cutoff,
        per_label=[LabelQualityOut(**row) for row in s.per_label])
