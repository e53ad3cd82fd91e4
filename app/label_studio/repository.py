"""Queries for the Label Studio annotations that became reviews."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.label_studio.models import LabelStudioAnnotation


def find(session: Session, schema_id: int, ls_project_id: int,
         ls_annotation_id: int) -> LabelStudioAnnotation | None:
    return session.scalar(select(LabelStudioAnnotation).where(
        LabelStudioAnnotation.schema_id == schema_id,
        LabelStudioAnnotation.ls_project_id == ls_project_id,
        LabelStudioAnnotation.ls_annotation_id == ls_annotation_id))


def live_by_ids(session: Session, schema_id: int, ls_project_id: int,
                ls_annotation_ids: list[int]) -> list[LabelStudioAnnotation]:
    """The annotations among these ids whose reviews still stand."""
    return list(session.scalars(select(LabelStudioAnnotation).where(
        LabelStudioAnnotation.schema_id == schema_id,
        LabelStudioAnnotation.ls_project_id == ls_project_id,
        LabelStudioAnnotation.ls_annotation_id.in_(ls_annotation_ids),
        LabelStudioAnnotation.retracted_at.is_(None))))


def latest_live_for_item(session: Session, schema_id: int,
                         item_id: int) -> LabelStudioAnnotation | None:
    """Another annotator's annotation of the same task that still stands, newest first."""
    return session.scalar(select(LabelStudioAnnotation).where(
        LabelStudioAnnotation.schema_id == schema_id, LabelStudioAnnotation.item_id == item_id,
        LabelStudioAnnotation.retracted_at.is_(None))
        .order_by(LabelStudioAnnotation.annotated_at.desc(), LabelStudioAnnotation.id.desc())
        .limit(1))
