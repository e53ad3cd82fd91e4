"""Input rules shared by every API model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, Field


def reject_nul(value: str) -> str:
    # PostgreSQL cannot store U+0000 in text or JSON; refuse it up front on every backend, so
    # the same request never succeeds on SQLite and fails on PostgreSQL.
    if "\x00" in value:
        raise ValueError("text must not contain the NUL character (U+0000)")
    return value


def reject_nul_deep(value: Any) -> Any:
    """The same rule for every string (keys too) inside a JSON value."""
    if isinstance(value, str):
        reject_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_nul_deep(key)
            reject_nul_deep(item)
    elif isinstance(value, list):
        for item in value:
            reject_nul_deep(item)
    return value


MAX_STORED_INT = 2**31 - 1
"""Largest value of an INTEGER column on PostgreSQL (version numbers): a larger one in a request
used to reach the database and fail there (500) instead of being refused."""
MAX_STORED_BIGINT = 2**63 - 1
"""Largest row id (BIGINT on PostgreSQL, INTEGER on SQLite)."""
MAX_METADATA_DEPTH = 32
"""Nesting levels allowed in item metadata. Metadata nested 255+ levels was accepted but could
never be serialised again, so every page holding the item answered 500."""

VersionNumber = Annotated[int, Field(ge=1, le=MAX_STORED_INT)]
VersionInPath = Annotated[int, Path(ge=1, le=MAX_STORED_INT)]


def json_depth(value: Any) -> int:
    """Nesting depth of a JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            current = list(current.values())
        if isinstance(current, list):
            deepest = max(deepest, depth + 1)
            stack.extend((item, depth + 1) for item in current)
    return deepest


NoNul = AfterValidator(reject_nul)
NoNulDeep = AfterValidator(reject_nul_deep)
