"""API models for the review queue and stats."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.validation import NoNul


class CandidateOut(BaseModel):
    label: str
    description: str
    rank: int
    retrieval_score: float
    score: float = Field(description="What the candidates were ranked by (the learnt scorer's "
                                     "blend when one re-ranked them).")
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
    labels: list[str]
    """Every label proposed (several on a multi-label schema)."""
    confidence: float | None
    cutoff: float
    """The confidence the decision had to reach to be accepted without a person (its job's
    cutoff, or the service default)."""
    target_precision: float | None = None
    """The precision its job asked for, when the job chose the cutoff from it."""
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
        None, description="The right label, or null for \"none of these labels\".",
        max_length=200)
    labels: list[Annotated[str, NoNul, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=100, description="Multi-label schemas: every label that applies ([] "
        "for none of them). Give `label` or `labels`, not both.")
    note: Annotated[str, NoNul] | None = Field(None, max_length=4000)

    @model_validator(mode="after")
    def _one_way_to_say_it(self) -> ReviewIn:
        if self.labels is not None and "label" in self.model_fields_set:
            raise ValueError("give `label` or `labels`, not both")
        if self.labels is None and "label" not in self.model_fields_set:
            raise ValueError("give `label` (null for none of the labels) or `labels`")
        return self


class ReviewOut(BaseModel):
    id: str
    schema_name: str = Field(alias="schema")
    label: str | None
    labels: list[str]
    status: str
    reviewer: str
    reviewed_at: datetime
    model_label: str | None

    model_config = ConfigDict(populate_by_name=True)


class UndoOut(BaseModel):
    id: str
    schema_name: str = Field(alias="schema")
    label: str | None
    """The item's label now: the decision it had before the review, or null."""
    status: str | None
    """Its status now (`needs_review` or `no_match` for a model decision), or null if the item
    had no decision before the review."""

    model_config = ConfigDict(populate_by_name=True)


class LabelQualityOut(BaseModel):
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
    per_label: list[LabelQualityOut]

    model_config = ConfigDict(populate_by_name=True)
