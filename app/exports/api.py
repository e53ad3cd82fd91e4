"""The export API's vocabulary: the formats a download may take and the status filter.

An export answers with a streamed file, not a JSON model, so this module holds the request side
only; the encoders of each format live in `formats.py`.
"""

from __future__ import annotations

from typing import Literal

from app.errors import InvalidInput
from app.labelling.models import STATUSES

ExportFormat = Literal["jsonl", "csv", "parquet", "label-studio"]
"""The `format` query parameter (each is an encoder in `formats.FORMATS`)."""

STREAM_TYPES: dict[str, dict] = {"application/x-ndjson": {}, "text/csv": {},
                                 "application/vnd.apache.parquet": {},
                                 "application/json": {}}
"""The media types an export is streamed as (for the OpenAPI document)."""


def parse_statuses(value: str | None) -> tuple[str, ...]:
    """The `status` query parameter: comma-separated statuses, each once; empty means all."""
    if not value:
        return ()
    chosen = tuple(dict.fromkeys(s.strip() for s in value.split(",") if s.strip()))
    unknown = [s for s in chosen if s not in STATUSES]
    if unknown or not chosen:
        raise InvalidInput(f"status must be one or more of {', '.join(STATUSES)} "
                           f"(comma-separated), not {value!r}")
    return chosen
