"""API models for datasets."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class RowErrorOut(BaseModel):
    row: int
    """1-based record number: CSV data rows after the header; JSONL line numbers."""
    reason: str


class DatasetSummaryOut(BaseModel):
    id: str
    filename: str
    format: Literal["csv", "jsonl", "parquet"]
    text_column: str
    id_column: str | None
    rows: int
    """Records read from the file, good and bad."""
    items: int
    """Rows that became an item or matched an existing one (rows = items + bad_rows)."""
    bad_rows: int
    created_at: datetime
    status: Literal["uploading", "complete", "failed"]
    """`uploading` while the file is read (the counts so far are committed batch by batch);
    `failed` if the server stopped before the end (upload the file again)."""
    error: str | None = None


class DatasetOut(DatasetSummaryOut):
    errors: list[RowErrorOut] = Field(
        description="The first bad rows (up to 1,000) with their reason; bad_rows counts all.")


class UploadOut(DatasetOut):
    created: int
    """Items this upload added; the other good rows matched items stored before (or earlier
    rows of the same file)."""
