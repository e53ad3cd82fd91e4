"""Request and response models of the review page's own endpoints (/review/api/...).

The page answers most calls with the review feature's models (`ReviewQueueOut`); these are the
shapes only the page uses.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.review.api import ReviewIn, ReviewItemOut
from app.validation import NoNul

# NoNul: PostgreSQL cannot compare text with U+0000 (a NUL in an id answered 500 there).
ItemId = Annotated[str, Field(min_length=1, max_length=200), NoNul]
SchemaNameIn = Annotated[str, Field(min_length=1, max_length=100), NoNul]


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_name: SchemaNameIn = Field(alias="schema")
    limit: int = Field(2, ge=1, le=10)
    exclude: list[ItemId] = Field(default_factory=list, max_length=1000)
    """Items the page skipped or already shows."""


class PageReviewIn(ReviewIn):
    item: ItemId


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_name: SchemaNameIn = Field(alias="schema")
    item: ItemId


class CountsOut(BaseModel):
    remaining: int
    reviewed: int


class UndoneOut(CountsOut):
    item: ReviewItemOut | None
    """The item back in the queue (leased to you), or null if it left the queue otherwise."""
