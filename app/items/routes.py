from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from app.deps import Editor, SessionDep, Viewer
from app.errors import InvalidInput
from app.items import repository, service
from app.items.api import IngestOut, ItemBatchIn, ItemIn, ItemOut, ItemSummaryOut, LabelOut
from app.items.models import Item
from app.label_schemas import repository as schemas
from app.labelling.models import STATUSES, Annotation
from app.pagination import Page, decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/items", tags=["items"])


@router.post("", status_code=201, response_model=IngestOut,
             responses={200: {"model": IngestOut, "description": "Every item existed already"}})
def post_items(
    body: Annotated[ItemIn | list[ItemIn] | ItemBatchIn, Body(
        description="One item, a list of items, or {\"items\": [...]}; up to 10,000 per request."
    )],
    principal: Editor,
    session: SessionDep,
    response: Response,
) -> IngestOut:
    """Store items (idempotent on their ids). Items are labelled by /v1/classify or a job."""
    items = body.items if isinstance(body, ItemBatchIn) else body if isinstance(body, list) \
        else [body]
    if isinstance(body, list) and not 1 <= len(body) <= 10_000:
        raise InvalidInput(f"send 1 to 10,000 items per request, not {len(body)}")
    result = service.ingest(session, principal.project_id, items)
    if result.created == 0:
        response.status_code = 200
    return IngestOut(ids=result.ids, created=result.created, existing=result.existing)


def _label_out(annotation: Annotation, schema_name: str) -> LabelOut:
    return LabelOut(schema_name=schema_name, schema_version=annotation.schema_version,
                    label=annotation.label, labels=annotation.labels or [],
                    confidence=annotation.confidence, status=annotation.status,
                    source=annotation.source, model_id=annotation.model_id,
                    prompt_version=annotation.prompt_version, note=annotation.note,
                    annotated_at=annotation.created_at, trace=annotation.trace or [])


@router.get("/{item_id}", response_model=ItemOut, response_model_by_alias=True)
def get_item(item_id: str, principal: Viewer, session: SessionDep,
             history: bool = Query(False, description="Also return every earlier annotation."),
             ) -> ItemOut:
    """One item with its current label per schema (`history=true`: every annotation too)."""
    item = repository.get_item(session, principal.project_id, item_id)
    out = ItemOut(id=item.external_id, text=item.text, metadata=item.meta or {},
                  created_at=item.created_at,
                  labels=[_label_out(a, name) for a, _, name in
                          repository.current_labels(session, item)])
    if history:
        out.history = [_label_out(a, name) for a, name in repository.history(session, item)]
    return out


def _summary(item: Item, state=None) -> ItemSummaryOut:  # type: ignore[no-untyped-def]
    return ItemSummaryOut(id=item.external_id, text=item.text, metadata=item.meta or {},
                       created_at=item.created_at,
                       label=state.label if state else None,
                       confidence=state.confidence if state else None,
                       status=state.status if state else None)


@router.get("", response_model=Page[ItemSummaryOut])
def list_items(
    principal: Viewer,
    session: SessionDep,
    schema: str | None = Query(None, description="Only items labelled under this schema."),
    status: str | None = Query(None, description=f"One of {', '.join(STATUSES)} (with schema)."),
    label: str | None = Query(None, max_length=200, description="Current label (with schema)."),
    min_confidence: float | None = Query(None, ge=0, le=1),
    max_confidence: float | None = Query(None, ge=0, le=1),
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = Query(None, max_length=100),
) -> Page[ItemSummaryOut]:
    """List items, newest first, optionally by schema and status; keyset-paginated with `after`."""
    filters: dict[str, Any] = {"status": status, "label": label,
                               "min_confidence": min_confidence, "max_confidence": max_confidence}
    used = [name for name, value in filters.items() if value is not None]
    if used and schema is None:
        raise InvalidInput(f"filter(s) {', '.join(used)} need a schema")
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    schema_id = schemas.get_schema(session, principal.project_id, schema).id if schema else None
    rows = repository.list_items(session, principal.project_id, schema_id=schema_id,
                                 after=decode_cursor(cursor), limit=limit + 1, **filters)
    page = rows[:limit]
    items = [_summary(*row) for row in page]
    next_cursor = encode_cursor(page[-1][0].id) if len(rows) > limit else None
    return Page[ItemSummaryOut](items=items, next_cursor=next_cursor)
