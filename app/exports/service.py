"""Streaming an export: keyset pages read in short transactions, encoded page by page.

The generator opens its own sessions (the request's session is closed once the response starts)
and a new one per page, so a long download never holds a transaction open: on SQLite an open
reader would keep the WAL from being checkpointed while workers write.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.orm import Session, sessionmaker

from app.exports import repository
from app.exports.formats import FORMATS
from app.exports.repository import Selection

PAGE_ROWS = 1_000
"""Rows read per query (read at run time, so tests can make pages small)."""


def stream_export(session_factory: sessionmaker[Session], selection: Selection,
                  fmt: str) -> Iterator[bytes]:
    encoder = FORMATS[fmt](selection.schema_name)
    yield encoder.begin().encode()
    after = 0
    while True:
        with session_factory() as session:
            rows = repository.export_page(session, selection, after=after, limit=PAGE_ROWS)
        if rows:
            yield encoder.page(rows).encode()
            after = rows[-1].pk
        if len(rows) < PAGE_ROWS:
            break
    yield encoder.end().encode()


def media_type(fmt: str) -> str:
    return FORMATS[fmt].media_type


def filename(selection: Selection, fmt: str) -> str:
    return f"{selection.schema_name}.{FORMATS[fmt].extension}"
