from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigIntPK, UTCDateTime, utcnow


class ScorerVersion(Base):
    """A learnt scorer fitted for one schema content; annotations record the version that ranked
    their candidates (app/rac/scorer.py)."""

    __tablename__ = "scorers"
    __table_args__ = (UniqueConstraint("schema_id", "version"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("label_schemas.id", ondelete="CASCADE"),
                                           index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    """The schema content (label set) it was fitted for: a new schema version needs a refit."""
    params: Mapped[bytes] = mapped_column(LargeBinary)
    held_out_params: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """The cross-fitted heads (app/rac/scorer.py `with_held_out_heads`), stored after the head
    itself: the calibrator's refit ranks each reviewed item with the one that never saw it.
    Null until they are fitted, and for versions stored before they existed."""
    blend: Mapped[float] = mapped_column(Float)
    n_reviews: Mapped[int] = mapped_column(Integer)
    exemplar_watermark: Mapped[int] = mapped_column(BigInteger)
    """The newest exemplar id the fit saw."""
    fit_seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ItemVector(Base):
    """An item's embedding, kept for the learnt scorer's fits: the schema's unreviewed items
    teach it through label propagation (app/rac/propagation.py), and embedding thousands of
    items again at every refit would cost minutes."""

    __tablename__ = "item_vectors"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"),
                                         primary_key=True)
    embedder_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
