from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigIntPK, JSONType, UTCDateTime, utcnow


class CalibratorVersion(Base):
    """A fitted calibrator of one schema; annotations record the version that scored them."""

    __tablename__ = "calibrators"
    __table_args__ = (UniqueConstraint("schema_id", "version"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("label_schemas.id", ondelete="CASCADE"),
                                           index=True)
    version: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    n_reviews: Mapped[int] = mapped_column(Integer)
    ece_before: Mapped[float | None] = mapped_column(Float, nullable=True)
    ece_after: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SchemaPrior(Base):
    """The prior calibrator of one schema content for one judge (app/rac/prior.py): fitted in
    the background after a push (app/labelling/prior_fitter.py), read by every process until
    reviews fit a calibrator. Decisions it scored record calibrator_version 0."""

    __tablename__ = "schema_priors"
    __table_args__ = (UniqueConstraint("schema_id", "content_hash", "judge_key", "top_k"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("label_schemas.id", ondelete="CASCADE"),
                                           index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    judge_key: Mapped[str] = mapped_column(String(600))
    """`none` (fitted without a judge) or the judge's model id and prompt version."""
    top_k: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    fit_seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
