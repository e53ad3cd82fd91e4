from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigIntPK, JSONType, UTCDateTime, utcnow


class LabelStudioAnnotation(Base):
    """A Label Studio annotation that became a review here.

    Kept because Label Studio's deletion webhook names only annotation ids: this row says which
    item the review was for, so deleting the annotation retracts it.
    """

    __tablename__ = "label_studio_annotations"
    # Named here: the generated name is longer than PostgreSQL's 63 characters.
    __table_args__ = (UniqueConstraint("schema_id", "ls_project_id", "ls_annotation_id",
                                       name="uq_label_studio_annotations_annotation"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            index=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("label_schemas.id", ondelete="CASCADE"))
    ls_project_id: Mapped[int] = mapped_column(BigInteger)
    ls_annotation_id: Mapped[int] = mapped_column(BigInteger)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    labels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    annotator: Mapped[str] = mapped_column(String(100))
    annotated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retracted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
