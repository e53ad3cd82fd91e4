"""The browser's dataset upload, answered with its progress as it reads the rows.

The browser shows the bytes it has sent (XHR upload events); once the file is in, reading it
into items takes a while more for a large file (the rows are stored 5,000 at a time), so the
page's answer is a stream of JSON lines rather than one body at the end:

    {"rows": 0, "read": 0, "size": 52428800}       the columns are checked, reading starts
    {"rows": 5000, "read": 1048576, "size": ...}    after each stored batch (bytes of the file read)
    {"done": {...}}                                  the dataset, as POST /v1/datasets reports it
    {"error": "...", "status": 422}                  the file turned out bad after reading began

A file refused before any row is read (not multipart, unknown format, no such column in a CSV
header) is answered with the usual 4xx JSON error instead. The reading runs in its own thread
with its own database session, so it finishes even if the browser goes away once the file is
sent (the dataset is then on the datasets page).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from app.datasets import service as dataset_service
from app.datasets.models import Dataset
from app.datasets.service import DatasetFile
from app.errors import AppError

logger = logging.getLogger(__name__)


class UploadedOut(BaseModel):
    id: str
    filename: str
    rows: int
    items: int
    bad_rows: int
    errors: list[dict[str, Any]]
    created: int


def uploaded(dataset: Dataset, created: int) -> UploadedOut:
    return UploadedOut(id=dataset.external_id, filename=dataset.filename, rows=dataset.rows,
                       items=dataset.items, bad_rows=dataset.bad_rows,
                       errors=dataset.errors[:100], created=created)


class PageUpload(threading.Thread):
    """Reads one received file into a new dataset, posting events to `events` as it goes:
    ("progress", dict), then ("done", UploadedOut) or ("error", exception), always last."""

    def __init__(self, session_factory: sessionmaker[Session], project_id: int,
                 source: DatasetFile) -> None:
        super().__init__(name="page-upload", daemon=True)
        self.session_factory = session_factory
        self.project_id = project_id
        self.source = source
        self.size = source.file.seek(0, 2)
        source.file.seek(0)
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def run(self) -> None:
        try:
            with self.session_factory() as session:
                dataset, created = dataset_service.upload_dataset(
                    session, self.project_id, self.source, checkpoint=session.commit,
                    progress=self._progress)
                session.commit()
                self.events.put(("done", uploaded(dataset, created)))
        except Exception as exc:  # reported to the page; the thread must always post an end
            if not isinstance(exc, AppError):
                logger.exception("dataset upload from the page failed")
            self.events.put(("error", exc))
        finally:
            # The thread owns the spooled file from here on: the request may be gone already.
            self.source.file.close()

    def _progress(self, rows: int) -> None:
        read = self.size if self.source.file.closed else self.source.file.tell()
        self.events.put(("progress", {"rows": rows, "read": min(read, self.size),
                                      "size": self.size}))

    def first_event(self) -> tuple[str, Any]:
        """Blocks until the columns are checked (progress) or the file is refused (error)."""
        return self.events.get()

    def lines(self, first: dict[str, Any]) -> Iterator[bytes]:
        """The response body: the first progress line, the later ones, then the outcome."""
        yield _line(first)
        while True:
            kind, value = self.events.get()
            if kind == "progress":
                yield _line(value)
            elif kind == "done":
                yield _line({"done": value.model_dump()})
                return
            else:
                if isinstance(value, AppError):
                    yield _line({"error": value.detail, "status": value.status_code})
                else:
                    yield _line({"error": "the server failed while reading the file; "
                                          "see its log", "status": 500})
                return


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
