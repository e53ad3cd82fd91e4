"""API models for the review queue and stats."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app.validation import NoNul


class CandidateOut(BaseModel):
    label: str
    description: str
    rank: int
    retrieval_score: float
    p_yes: float | None


class ReviewItemOut(BaseModel):
    id: str
    text: str
    metadata: dict[str, Any]
    schema_name: str = Field(alias="schema")
    schema_version: int
    status: str
    label: str | None
    """The model's proposal (null when it accepted none of the candidates)."""
    confidence: float | None
    candidates: list[CandidateOut]
    lease_expires_at: datetime

    model_config = ConfigDict(populate_by_name=True)


class ReviewQueueOut(BaseModel):
    items: list[ReviewItemOut]
    remaining: int
    """Items of this schema that still need a person (including the ones returned)."""
    reviewed: int


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_name: Annotated[str, NoNul] | None = Field(
        None, alias="schema", min_length=1, max_length=100,
        description="Needed only if the item is labelled under several schemas.")
    label: Annotated[str, NoNul] | None = Field(
        description="The right label, or null for \"none of these labels\".", max_length=200)
    note: Annotated[str, NoNul] | None = Field(None, max_length=4000)


class ReviewOut(BaseModel):
    id: str
    schema_name: str = Field(alias="schema")
    label: str | None
    status: str
    reviewer: str
    reviewed_at: datetime
    model_label: str | None

    model_config = ConfigDict(populate_by_name=True)


class LabelQuality(BaseModel):
    label: str
    precision: float | None
    recall: float | None
    predicted: int
    actual: int


class SchemaStatsOut(BaseModel):
    schema_name: str = Field(alias="schema")
    total: int
    counts: dict[str, int]
    coverage: float | None
    """Share of labelled items the model labelled at or above the cutoff (no person needed)."""
    cutoff: float
    reviewed_model_decisions: int
    """Items the model decided and a person then reviewed: the basis of the numbers below."""
    agreement: float | None
    precision_at_cutoff: float | None
    reviewed_at_cutoff: int
    per_label: list[LabelQuality]

    model_config = ConfigDict(populate_by_name=True)
