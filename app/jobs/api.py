"""API models for batch jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.items.api import ItemId
from app.validation import NoNul, VersionNumber

Strategy = Literal["cascade", "sequential", "window", "retrieval"]
StatusFilter = Literal["accepted", "needs_review", "no_match", "reviewed"]


class ItemSelectionIn(BaseModel):
    """Which of the project's items to label; every field narrows the selection."""

    model_config = ConfigDict(extra="forbid")

    ids: list[ItemId] | None = Field(None, min_length=1, max_length=100_000,
                                     description="These items (by id).")
    status: list[StatusFilter] | None = Field(
        None, min_length=1, description="Items whose current status under the job's schema is "
        "one of these.")
    unlabelled: bool = Field(False, description="Only items with no label under the schema yet.")


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_name: Annotated[str, NoNul] = Field(alias="schema", min_length=1, max_length=100)
    version: VersionNumber | None = Field(None, description="Schema version; default the latest.")
    dataset: Annotated[str, NoNul] | None = Field(
        None, max_length=40, description="Label the items of this dataset (its id).")
    items: ItemSelectionIn | None = Field(
        None, description="Or label the project's items that match this ({} = all of them).")
    include_reviewed: bool = Field(
        False, description="Also run the model on items a person already reviewed (their "
        "reviewed label is kept either way).")
    top_k: int | None = Field(None, ge=1, le=100)
    cutoff: float | None = Field(None, ge=0, le=1)
    target_precision: float | None = Field(
        None, ge=0.5, le=0.999, description="Instead of a cutoff: the precision wanted; the "
        "cutoff is chosen from the schema's reviews when they can support it (as GET "
        "/v1/schemas/{name}/cutoff does), else by the calibrator (the schema prior before any "
        "review). Default: the server's target precision (0.95).")
    accept_threshold: float | None = Field(None, ge=0, le=1)
    strategy: Strategy | None = Field(
        None, description="cascade (the default: the judge only where it can change the "
        "outcome), sequential (the paper), window (same decisions, fewer rounds) or "
        "retrieval (no LLM: the most similar label, for a fast first pass).")

    @model_validator(mode="after")
    def _one_selection(self) -> JobIn:
        if (self.dataset is None) == (self.items is None):
            raise ValueError("give exactly one of dataset or items")
        if self.cutoff is not None and self.target_precision is not None:
            raise ValueError("give a cutoff or a target_precision, not both")
        return self


class JobCountsOut(BaseModel):
    accepted: int
    needs_review: int
    no_match: int


class JobOut(BaseModel):
    id: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    schema_name: str = Field(alias="schema")
    schema_version: int
    params: dict[str, Any]
    selection: dict[str, Any]
    total: int
    done: int
    counts: JobCountsOut
    judge_calls_per_item: float | None
    items_per_second: float | None
    eta_seconds: float | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    model_config = ConfigDict(populate_by_name=True)
