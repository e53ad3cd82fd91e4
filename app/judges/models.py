from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigIntPK, JSONType, UTCDateTime, utcnow

TRAINING_STATES = ("training", "ready", "failed")


class TrainedJudge(Base):
    """One training of the judge on a schema's labels. At most one version per schema is active:
    the engine asks it instead of the default judge, and annotations record its model id."""

    __tablename__ = "trained_judges"
    __table_args__ = (UniqueConstraint("schema_id", "version"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("label_schemas.id", ondelete="CASCADE"),
                                           index=True)
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="training")
    """`training`, `ready` or `failed` (see `error`)."""
    path: Mapped[str] = mapped_column(String(500))
    """The model file, relative to RAC_DATA_DIR."""
    model_id: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(50))
    schema_version: Mapped[int] = mapped_column(Integer)
    """The schema version whose labels it was trained on."""
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    """What it was trained on: source, items per label, pairs of each kind."""
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    """Training time, loss and AUC on the training pairs before and after."""
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
