"""API models for items."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.validation import MAX_METADATA_DEPTH, NoNul, NoNulDeep, json_depth

MAX_ITEMS_PER_REQUEST = 10_000
MAX_TEXT_CHARS = 20_000
MAX_METADATA_BYTES = 16_384

ItemId = Annotated[str, StringConstraints(min_length=1, max_length=200,
                                          pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@~-]*$")]


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ItemId | None = Field(None, description="Your id for the item (letters, digits, "
                              "_ . : @ ~ -); without one it is derived from the text (`txt_` + "
                              "its SHA-256), so the same text posted twice is one item. "
                              "Re-posting an id "
                              "with the same text changes nothing; with other text it is a 409.")
    text: Annotated[str, NoNul] = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    metadata: Annotated[dict[str, Any], NoNulDeep] = Field(default_factory=dict,
                                     description=f"Any JSON object up to {MAX_METADATA_BYTES} "
                                     "bytes, returned with the item and in exports.")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is blank")
        return text

    @field_validator("metadata")
    @classmethod
    def _small(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        depth = json_depth(metadata)
        if depth > MAX_METADATA_DEPTH:
            raise ValueError(f"metadata nests {depth} levels deep; the limit is "
                             f"{MAX_METADATA_DEPTH}")
        try:  # NaN and Infinity are not JSON: PostgreSQL refuses them (500 on JSONB)
            size = len(json.dumps(metadata, ensure_ascii=False, default=str,
                                  allow_nan=False).encode())
        except ValueError:
            raise ValueError("metadata must not contain NaN or Infinity (not JSON)") from None
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is {size} bytes; the limit is {MAX_METADATA_BYTES}")
        return metadata


class ItemBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ItemIn] = Field(min_length=1, max_length=MAX_ITEMS_PER_REQUEST)


class IngestOut(BaseModel):
    ids: list[str]
    """The item ids, in the order posted."""
    created: int
    existing: int


class LabelOut(BaseModel):
    """The item's current label under one schema (its latest annotation)."""

    schema_name: str = Field(alias="schema")
    schema_version: int
    label: str | None
    labels: list[str]
    confidence: float | None
    status: str
    source: str
    model_id: str | None
    prompt_version: str | None
    note: str | None
    annotated_at: datetime
    trace: list[dict[str, Any]]

    model_config = ConfigDict(populate_by_name=True)


class ItemOut(BaseModel):
    id: str
    text: str
    metadata: dict[str, Any]
    created_at: datetime
    labels: list[LabelOut] = []
    history: list[LabelOut] | None = None


class ItemSummaryOut(BaseModel):
    id: str
    text: str
    metadata: dict[str, Any]
    created_at: datetime
    label: str | None = None
    confidence: float | None = None
    status: str | None = None
