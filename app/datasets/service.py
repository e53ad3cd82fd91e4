"""Uploading a dataset: stream the file's records into items in batches.

Rows are validated one by one; a bad row is counted and reported with its number and reason,
and the rest of the file goes on. Good rows go through `items.service.ingest` in batches, so a
file is stored exactly as the same items posted to /v1/items would be (idempotent on the id).

After each batch the caller's `checkpoint` may commit: on SQLite that lets other writers (job
workers, reviewers) in between batches instead of waiting for the whole file. The dataset is
committed first as `uploading`, and every batch commits its members with the counts so far, so
the stored counts always match the stored members. A process that dies mid-file leaves an
upload whose process is gone: it reads as `failed` with those counts (`upload_status`), and
posting the file again is idempotent. Only a file that cannot be read is refused; then no
dataset is kept (rows of batches already stored stay as plain items).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import IO, Any

from sqlalchemy.orm import Session

from app.datasets import readers, repository
from app.datasets.models import Dataset
from app.datasets.rows import BadRow, to_item
from app.db import utcnow
from app.errors import InvalidInput
from app.items.api import ItemIn
from app.items.service import ingest
from app.process_identity import held_by_dead_incarnation, worker_name

STALE_UPLOAD = timedelta(minutes=10)
"""An upload with no batch committed for this long is failed even if its process cannot be
checked (it ran on another host). A batch takes about a second."""
BATCH_ROWS = 5_000
"""Rows per ingest call: large enough for few round trips, small enough for flat memory."""
MAX_KEPT_ERRORS = 1_000


@dataclass(frozen=True)
class DatasetFile:
    file: IO[bytes]
    """Binary and seekable (an upload's spooled file, or a file on disk)."""
    filename: str
    text_column: str
    id_column: str | None = None
    format: str | None = None
    """csv, jsonl or parquet; None means: from the filename's extension."""


@dataclass
class _Tally:
    rows: int = 0
    items: int = 0
    created: int = 0
    bad_rows: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    """Columns met in at least one record (JSONL has no header to check up front)."""

    def bad(self, row: int, reason: str) -> None:
        self.bad_rows += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append({"row": row, "reason": reason})


def new_dataset_id() -> str:
    return "ds_" + secrets.token_hex(10)


def upload_dataset(session: Session, project_id: int, source: DatasetFile,
                   checkpoint: Callable[[], None] = lambda: None,
                   progress: Callable[[int], None] = lambda rows: None) -> tuple[Dataset, int]:
    """Store the file's rows as items, members of a new dataset. Returns (dataset, created).

    `progress(rows)` is called once the file's columns are checked (0) and after each stored
    batch with the rows read so far (the browser's upload shows it)."""
    if source.id_column == source.text_column:
        raise InvalidInput("id_column and text_column must name different columns")
    fmt = readers.detect_format(source.filename, source.format)
    table = readers.open_table(source.file, fmt)
    source = replace(source, id_column=table.id_column(source.id_column, source.text_column))
    table.require_columns(source.text_column, source.id_column)
    dataset = Dataset(project_id=project_id, external_id=new_dataset_id(),
                      filename=source.filename[:300], format=fmt,
                      text_column=source.text_column, id_column=source.id_column,
                      rows=0, items=0, bad_rows=0, errors=[], status="uploading",
                      uploader=worker_name(), updated_at=utcnow())
    session.add(dataset)
    session.flush()
    checkpoint()
    try:
        progress(0)
        created = _read_into(session, project_id, source, table, dataset, checkpoint, progress)
    except BaseException:
        session.rollback()
        repository.delete_dataset(session, dataset.id)
        checkpoint()
        raise
    return dataset, created


def _read_into(session: Session, project_id: int, source: DatasetFile,
               table: readers.Table, dataset: Dataset, checkpoint: Callable[[], None],
               progress: Callable[[int], None]) -> int:
    tally = _Tally()
    check_columns = table.columns is None
    wanted = {source.text_column, source.id_column} - {None}
    batch: list[tuple[int, ItemIn]] = []
    for record in table.records:
        tally.rows += 1
        if record.values is None:
            tally.bad(record.row, record.error or "unreadable")
            continue
        if check_columns and len(tally.seen) < len(wanted):
            tally.seen.update(c for c in wanted if c in record.values)
        try:
            batch.append((record.row, to_item(record.values, source.text_column,
                                              source.id_column)))
        except BadRow as exc:
            tally.bad(record.row, str(exc))
        if len(batch) >= BATCH_ROWS:
            _store(session, project_id, dataset.id, batch, tally)
            _record_progress(dataset, tally)
            checkpoint()
            progress(tally.rows)
            batch = []
    _store(session, project_id, dataset.id, batch, tally)

    if tally.rows == 0:
        raise InvalidInput("the file has no rows")
    if check_columns:
        missing = [c for c in (source.text_column, source.id_column)
                   if c is not None and c not in tally.seen]
        if missing:
            raise InvalidInput(f"no record of the file has a field {missing[0]!r}")
    _record_progress(dataset, tally)
    dataset.status = "complete"
    session.flush()
    return tally.created


def _record_progress(dataset: Dataset, tally: _Tally) -> None:
    """The counts of the rows stored so far, committed with their batch."""
    dataset.rows, dataset.items, dataset.bad_rows = tally.rows, tally.items, tally.bad_rows
    dataset.errors = sorted(tally.errors, key=lambda e: e["row"])
    dataset.updated_at = utcnow()


def upload_status(dataset: Dataset) -> tuple[str, str | None]:
    """(status, error) as a reader should see them: an upload whose process died is failed."""
    if dataset.status != "uploading":
        return dataset.status, dataset.error
    stale = dataset.updated_at is not None and utcnow() - dataset.updated_at > STALE_UPLOAD
    if stale or held_by_dead_incarnation(dataset.uploader, None):
        return "failed", (f"the upload stopped after {dataset.rows} rows (its server process "
                          "ended); upload the file again: rows stored already are matched, "
                          "not duplicated")
    return "uploading", None


def _store(session: Session, project_id: int, dataset_id: int,
           batch: list[tuple[int, ItemIn]], tally: _Tally) -> None:
    if not batch:
        return
    result = ingest(session, project_id, [item for _, item in batch], skip_conflicts=True)
    for position, reason in sorted(result.conflicts.items()):
        tally.bad(batch[position][0], reason)
    tally.items += len(batch) - len(result.conflicts)
    tally.created += result.created
    repository.add_members(session, dataset_id, (pk for pk in result.item_pks if pk is not None))
