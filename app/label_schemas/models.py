from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, BigIntPK, JSONType, UTCDateTime, utcnow


class LabelSchema(Base):
    """A named schema within a project; its content lives in immutable versions."""

    __tablename__ = "label_schemas"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            index=True)
    name: Mapped[str] = mapped_column(String(100))
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[SchemaVersion]] = relationship(
        back_populates="schema", order_by="SchemaVersion.version", viewonly=True
    )


class SchemaVersion(Base):
    __tablename__ = "schema_versions"
    __table_args__ = (UniqueConstraint("schema_id", "version"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("label_schemas.id", ondelete="CASCADE"),
                                           index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    multi_label: Mapped[bool] = mapped_column(Boolean, default=False)
    label_count: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    schema: Mapped[LabelSchema] = relationship(back_populates="versions")
