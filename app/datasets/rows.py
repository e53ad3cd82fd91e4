"""One file record -> one item (`ItemIn`), or the reason it cannot be one.

The text column becomes the text, the id column (if any) the id, every other column the item's
metadata. Without an id column the id is derived from the text, so uploading the same file
again matches the items it created instead of adding copies.
"""

from __future__ import annotations

import base64
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from app.items.api import ItemIn
from app.items.ids import text_id
from app.validation import MAX_METADATA_DEPTH, json_depth


class BadRow(Exception):
    """The record cannot become an item; the message says why."""


def to_item(values: dict[str, Any], text_column: str, id_column: str | None) -> ItemIn:
    text = values.get(text_column)
    if text is None or text == "":
        raise BadRow(f"no text: {text_column!r} is missing or empty")
    if not isinstance(text, str):
        raise BadRow(f"the text in {text_column!r} is a {_kind(text)}, not a string")
    # Without an id column the id comes from the text: a re-upload matches, never duplicates.
    item_id = text_id(text) if id_column is None else _id_value(values.get(id_column), id_column)
    metadata = {str(k): v for k, v in values.items() if k != text_column and k != id_column}
    # Measured without recursion before json_safe recurses: a JSONL line nested 600 deep parses
    # (json's C decoder) but would exhaust Python's recursion limit here.
    depth = json_depth(metadata)
    if depth > MAX_METADATA_DEPTH:
        raise BadRow(f"metadata nests {depth} levels deep; the limit is {MAX_METADATA_DEPTH}")
    metadata = {k: json_safe(v) for k, v in metadata.items()}
    try:
        return ItemIn(id=item_id, text=text, metadata=metadata)
    except ValidationError as exc:
        raise BadRow(_describe(exc)) from None


def _id_value(value: Any, id_column: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadRow(f"no id: {id_column!r} is missing or empty")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadRow(f"the id in {id_column!r} is a {_kind(value)}, not a string or integer")
    return str(value).strip()


def _kind(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "decimal number", list: "list",
            dict: "object"}.get(type(value), type(value).__name__)


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors()[:3]:
        field = ".".join(str(p) for p in err["loc"]) or "row"
        if field == "id" and err["type"] == "string_pattern_mismatch":
            problems.append("id: only letters, digits and _ . : @ ~ - are allowed, starting "
                            "with a letter or digit")
        else:
            problems.append(f"{field}: {err['msg']}")
    return "; ".join(problems)


def json_safe(value: Any) -> Any:
    """A value any database's JSON column takes: no NaN or infinity (PostgreSQL refuses them),
    dates as ISO strings, bytes as base64."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)
