from __future__ import annotations

from fastapi import APIRouter, Query

from app.datasets import repository, service
from app.datasets.api import DatasetOut, DatasetSummaryOut, UploadOut
from app.datasets.models import Dataset
from app.datasets.upload import DatasetUpload
from app.deps import Editor, SessionDep, Viewer
from app.pagination import Page, decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

_UPLOAD_BODY = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object",
        "required": ["file", "text_column"],
        "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "CSV (with a header), JSONL or Parquet; up to 2 GiB."},
            "text_column": {"type": "string", "description": "Column holding the text."},
            "id_column": {"type": "string", "description": "Column holding your item ids. "
                          "Default: a column named `id` if the file has one, else ids derived "
                          "from the text."},
            "format": {"type": "string", "enum": ["csv", "jsonl", "parquet"],
                       "description": "Default: from the filename's extension."},
        },
    }}},
}


def _summary(d: Dataset) -> dict:
    status, error = service.upload_status(d)
    return dict(id=d.external_id, filename=d.filename, format=d.format,
                text_column=d.text_column, id_column=d.id_column, rows=d.rows, items=d.items,
                bad_rows=d.bad_rows, created_at=d.created_at, status=status, error=error)


@router.post("", status_code=201, response_model=UploadOut,
             openapi_extra={"requestBody": _UPLOAD_BODY})
def upload_dataset(principal: Editor, upload: DatasetUpload, session: SessionDep) -> UploadOut:
    """Upload a file of items. Rows become items (idempotent on their ids) and members of a
    new dataset; every column other than the text and id columns goes into the metadata. Bad
    rows are reported with their row number and reason; the good rows are stored."""
    # Commit after every batch: a long upload must not hold SQLite's one write lock throughout.
    dataset, created = service.upload_dataset(session, principal.project_id, upload,
                                              checkpoint=session.commit)
    return UploadOut(**_summary(dataset), errors=dataset.errors, created=created)


@router.get("/{dataset_id}", response_model=DatasetOut)
def get_dataset(dataset_id: str, principal: Viewer, session: SessionDep) -> DatasetOut:
    """One uploaded dataset: its row counts and the rows that were refused, by row number."""
    dataset = repository.get_dataset(session, principal.project_id, dataset_id)
    return DatasetOut(**_summary(dataset), errors=dataset.errors)


@router.get("", response_model=Page[DatasetSummaryOut])
def list_datasets(principal: Viewer, session: SessionDep,
                  limit: int = Query(50, ge=1, le=500),
                  cursor: str | None = Query(None, max_length=100)) -> Page[DatasetSummaryOut]:
    """The project's datasets, newest first."""
    rows = repository.list_datasets(session, principal.project_id,
                                    before=decode_cursor(cursor), limit=limit + 1)
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].id) if len(rows) > limit else None
    return Page[DatasetSummaryOut](items=[DatasetSummaryOut(**_summary(d)) for d in page],
                                next_cursor=next_cursor)
