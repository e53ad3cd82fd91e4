"""API models for trained judges."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TrainIn(BaseModel):
    from_reviews: bool = True
    """Learn from the schema's reviewed items as well as its own examples (false: the
    examples written in the schema only)."""
    examples_per_label: int | None = Field(None, ge=1, le=100_000)
    """At most this many reviewed items per label (a fixed random choice); empty means all."""
    epochs: int = Field(2, ge=1, le=20)
    """Passes over the training pairs."""
    seed: int = Field(0, ge=0)
    """Which items are chosen and the order they are seen in."""
    train_layers: int = Field(4, ge=1, le=64)
    """Top decoder layers that learn; more learn more slowly."""

    model_config = ConfigDict(extra="forbid")


class JudgeOut(BaseModel):
    schema_name: str = Field(alias="schema")
    version: int
    """The judge's version within the schema; also the id of its training."""
    state: str
    """`training`, `ready` or `failed` (see `error`)."""
    active: bool
    """The engine asks this judge for the schema's items."""
    model_id: str
    """Recorded on every annotation the judge decides."""
    prompt_version: str
    schema_version: int
    """The schema version whose labels it learnt."""
    data: dict[str, Any]
    """What it learnt from: source, items, pairs of each kind."""
    metrics: dict[str, Any]
    """Training time, steps, loss and AUC on the training pairs (before / after); while
    training, its progress."""
    error: str | None
    created_at: datetime
    finished_at: datetime | None

    model_config = ConfigDict(populate_by_name=True)
