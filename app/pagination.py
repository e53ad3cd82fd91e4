"""Keyset pagination: an opaque cursor holding the last row's key, and a generic page type."""

from __future__ import annotations

import base64
import binascii
from typing import Generic, TypeVar

from pydantic import BaseModel

from app.errors import InvalidInput
from app.validation import MAX_STORED_BIGINT

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    """Pass as `cursor` to get the next page; null on the last page."""


def encode_cursor(key: int) -> str:
    return base64.urlsafe_b64encode(str(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        value = int(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("the cursor is not one this API returned") from None
    if not 0 <= value <= MAX_STORED_BIGINT:
        raise InvalidInput("the cursor is not one this API returned")
    return value
