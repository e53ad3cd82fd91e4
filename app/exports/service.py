"""Streaming an export: keyset pages read in short transactions, encoded page by page.

The generator opens its own sessions (the request's session is closed once the response starts)
and a new one per page, so a long download never holds a transaction open: on SQLite an open
reader would keep the WAL from being checkpointed while workers write.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from app.exports import repository
from app.exports.formats import FORMATS
from app.exports.repository import Selection
from app.exports.rows import ExportInfo, MetadataColumn, metadata_columns

PAGE_ROWS = 1_000
"""Rows read per query (read at run time, so tests can make pages small)."""


def export_info(session_factory: sessionmaker[Session], selection: Selection,
                fmt: str) -> ExportInfo:
    """What the format must know before the first row: label names, and for formats with a
    column per metadata field every field of the selection (one extra pass over metadata)."""
    with session_factory() as session:
        names, multi_label = repository.label_names(session, selection.schema_id)
    columns: tuple[MetadataColumn, ...] = ()
    if FORMATS[fmt].metadata_as_columns:
        columns = metadata_columns(_metadata_pages(session_factory, selection))
    return ExportInfo(schema_name=selection.schema_name, decision=selection.describes,
                      by_job=selection.decision == "job",
                      label_names=tuple(names), multi_label=multi_label,
                      metadata_columns=columns)


def _metadata_pages(session_factory: sessionmaker[Session], selection: Selection
                    ) -> Iterator[list[dict[str, Any]]]:
    after = 0
    while True:
        with session_factory() as session:
            rows = repository.metadata_page(session, selection, after=after, limit=PAGE_ROWS)
        if rows:
            yield [row.meta or {} for row in rows]
            after = rows[-1].pk
        if len(rows) < PAGE_ROWS:
            return


def stream_export(session_factory: sessionmaker[Session], selection: Selection,
                  fmt: str) -> Iterator[bytes]:
    encoder = FORMATS[fmt](export_info(session_factory, selection, fmt))
    yield encoder.begin()
    after = 0
    while True:
        with session_factory() as session:
            rows = repository.export_page(session, selection, after=after, limit=PAGE_ROWS)
        if rows:
            yield encoder.page(rows)
            after = rows[-1].pk
        if len(rows) < PAGE_ROWS:
            break
    yield encoder.end()


def media_type(fmt: str) -> str:
    return FORMATS[fmt].media_type


def filename(selection: Selection, fmt: str) -> str:
    job = f".{selection.job_name}" if selection.job_name else ""
    return f"{selection.schema_name}{job}.{FORMATS[fmt].extension}"


def export_response(request: Request, selection: Selection, fmt: str) -> StreamingResponse:
    """The export streamed as a download (the API and the review page's export links)."""
    return StreamingResponse(
        stream_export(request.app.state.session_factory, selection, fmt),
        media_type=media_type(fmt),
        headers={"Content-Disposition":
                 f'attachment; filename="{filename(selection, fmt)}"',
                 "X-Export-Decision": selection.describes})
