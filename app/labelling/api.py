"""API models for classification."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.items.api import MAX_TEXT_CHARS, ItemId
from app.validation import NoNul, VersionNumber


class ClassifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_name: Annotated[str, NoNul] = Field(alias="schema", min_length=1, max_length=100,
                             description="Label schema name.")
    version: VersionNumber | None = Field(None, description="Schema version; default the latest.")
    text: Annotated[str, NoNul] | None = Field(None, min_length=1, max_length=MAX_TEXT_CHARS,
                             description="A text to classify (nothing is stored).")
    item_id: ItemId | None = Field(None, description="A stored item: the decision is stored "
                                   "as its annotation.")
    top_k: int | None = Field(None, ge=1, le=100, description="Candidate labels to consider.")
    cutoff: float | None = Field(None, ge=0, le=1,
                                 description="Confidence below which a label needs review.")
    accept_threshold: float | None = Field(None, ge=0, le=1,
                                           description="P(yes) that accepts a candidate.")
    target_precision: float | None = Field(
        None, gt=0, lt=1, description="Instead of a cutoff: the precision wanted of accepted "
        "labels; the schema's calibrator turns it into a cutoff (default: the server's, 0.95).")
    strategy: Literal["cascade", "sequential", "window", "retrieval"] | None = Field(
        None, description="cascade (default: the judge only where it can change the outcome), "
        "sequential (the paper), window, or retrieval (no LLM).")

    @model_validator(mode="after")
    def _one_input(self) -> ClassifyIn:
        if (self.text is None) == (self.item_id is None):
            raise ValueError("give exactly one of text or item_id")
        if self.cutoff is not None and self.target_precision is not None:
            raise ValueError("give a cutoff or a target_precision, not both")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is blank")
        return self


class TraceStepOut(BaseModel):
    label: str
    rank: int
    retrieval_score: float = Field(description="The label index's similarity score.")
    score: float = Field(description="What the candidates were ranked by: `retrieval_score` "
                                     "blended with the learnt scorer's log-probability when "
                                     "`scorer_version` is set, else equal to it.")
    p_yes: float | None
    accepted: bool


class DecisionOut(BaseModel):
    schema_name: str = Field(alias="schema")
    schema_version: int
    item_id: str | None = None
    label: str | None
    labels: list[str]
    confidence: float
    status: Literal["accepted", "needs_review", "no_match"]
    judge_calls: int
    cutoff: float | None
    """The cutoff the status was decided at."""
    target_precision: float | None
    """The precision the cutoff was chosen for (null: a fixed cutoff)."""
    calibrator_version: int | None
    """0: the prior fitted on the schema's examples; 1 and up: fitted on reviews."""
    model_id: str | None
    prompt_version: str | None
    trace: list[TraceStepOut]
    """Every retrieved candidate, most similar first, with P(yes) where the judge was asked."""
    scorer_version: int | None = None
    """The learnt scorer that ranked the candidates (refitted from reviews in the background);
    None: retrieval's ranking alone (no review yet, or the schema changed since the last fit)."""

    model_config = ConfigDict(populate_by_name=True)
