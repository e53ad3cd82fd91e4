from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigIntPK, JSONType, UTCDateTime, utcnow

STATUSES = ("accepted", "needs_review", "no_match", "reviewed")
NEEDS_A_PERSON = ("needs_review", "no_match")


class Annotation(Base):
    """One decision about one item under one schema version; never changed, only added to."""

    __tablename__ = "annotations"
    __table_args__ = (
        Index("ix_annotations_item_schema", "item_id", "schema_id", "id"),
        # A job writes one annotation per item, however often a chunk is retried.
        UniqueConstraint("job_id", "item_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    schema_id: Mapped[int] = mapped_column(ForeignKey("label_schemas.id", ondelete="CASCADE"))
    schema_version: Mapped[int] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    labels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(100))
    """`model`, or the name of the reviewer's key."""
    reviewer_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True)
    model_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    prompt_version: Mapped[str | None] = mapped_column(String(50), nullable=True)
    calibrator_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    scorer_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Which learnt scorer ranked the candidates (None: retrieval alone)."""
    """The schema's calibrator that turned the trace into `confidence` (null: raw P(yes))."""
    trace: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"),
                                               nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ItemState(Base):
    """The item's current label under a schema (the latest annotation, denormalised for queries),
    the model's last decision (kept when a person overrides it, for agreement stats), and the
    review lease."""

    __tablename__ = "item_states"
    __table_args__ = (
        UniqueConstraint("item_id", "schema_id"),
        Index("ix_item_states_queue", "schema_id", "status", "confidence", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    schema_id: Mapped[int] = mapped_column(ForeignKey("label_schemas.id", ondelete="CASCADE"))
    annotation_id: Mapped[int] = mapped_column(ForeignKey("annotations.id", ondelete="CASCADE"))
    schema_version: Mapped[int] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    model_label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    model_annotation_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotations.id", ondelete="SET NULL"), nullable=True)
    """The model's last decision (its trace feeds calibration once a person reviews it)."""
    lease_owner: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Exemplar(Base):
    """A reviewed item as an example of its label: its vector joins the schema's label index.

    Rows are only added; a later row for the same item replaces the earlier one in the index (a
    null label removes it: "none of these labels"). The id is the watermark indexes sync from.
    """

    __tablename__ = "exemplars"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    schema_id: Mapped[int] = mapped_column(ForeignKey("label_schemas.id", ondelete="CASCADE"),
                                           index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    embedder_id: Mapped[str] = mapped_column(String(100))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
