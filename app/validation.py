"""Input rules shared by every API model."""

from __future__ import annotations

from typing import Any

from pydantic import AfterValidator


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


NoNul = AfterValidator(reject_nul)
NoNulDeep = AfterValidator(reject_nul_deep)
