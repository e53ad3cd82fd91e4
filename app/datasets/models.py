from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigIntPK, JSONType, UTCDateTime, utcnow

UPLOAD_STATES = ("uploading", "complete", "failed")


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            index=True)
    external_id: Mapped[str] = mapped_column(String(40), unique=True)
    filename: Mapped[str] = mapped_column(String(300))
    format: Mapped[str] = mapped_column(String(10))
    text_column: Mapped[str] = mapped_column(String(200))
    id_column: Mapped[str | None] = mapped_column(String(200), nullable=True)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    """Rows read from the file, good and bad."""
    items: Mapped[int] = mapped_column(Integer, default=0)
    """Rows that became (or matched) items."""
    bad_rows: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    """The first bad rows: row number and reason."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="complete",
                                        server_default="complete")
    """uploading (committed batch by batch), complete, or failed (the reason in `error`).
    Datasets stored before uploads had a status were complete."""
    uploader: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """The process reading the file (see `app.process_identity`): an upload whose process is
    gone is failed, not uploading for ever."""
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When the last batch was committed."""
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class DatasetItem(Base):
    """Membership: an item may be in several datasets (the same id uploaded twice)."""

    __tablename__ = "dataset_items"

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"),
                                            primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"),
                                         primary_key=True)
