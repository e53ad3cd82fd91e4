"""The judges feature's queries: trained-judge rows and the reviewed items a judge learns from."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.items.models import Item
from app.judges.models import TrainedJudge
from app.label_schemas.models import LabelSchema, SchemaVersion
from app.labelling.models import ItemState


def list_judges(session: Session, schema_id: int) -> list[TrainedJudge]:
    return list(session.scalars(select(TrainedJudge).where(TrainedJudge.schema_id == schema_id)
                                .order_by(TrainedJudge.version)))


def active_judge(session: Session, schema_id: int) -> TrainedJudge | None:
    return session.scalar(select(TrainedJudge).where(TrainedJudge.schema_id == schema_id,
                                                     TrainedJudge.active.is_(True)).limit(1))


def get_judge(session: Session, schema: LabelSchema, version: int) -> TrainedJudge:
    found = session.scalar(select(TrainedJudge).where(TrainedJudge.schema_id == schema.id,
                                                      TrainedJudge.version == version))
    if found is None:
        raise NotFound(f"schema {schema.name!r} has no trained judge version {version}")
    return found


def latest_version(session: Session, schema_id: int) -> int:
    """The highest trained-judge version of the schema (0 when it has none)."""
    return session.scalar(select(func.max(TrainedJudge.version))
                          .where(TrainedJudge.schema_id == schema_id)) or 0


def deactivate_others(session: Session, schema_id: int, keep_id: int) -> None:
    session.execute(update(TrainedJudge).where(TrainedJudge.schema_id == schema_id,
                                               TrainedJudge.id != keep_id)
                    .values(active=False))


def trained_on_version(session: Session, judge: TrainedJudge) -> SchemaVersion | None:
    """The schema version the judge was (or is being) trained on."""
    return session.scalar(select(SchemaVersion).where(
        SchemaVersion.schema_id == judge.schema_id, SchemaVersion.version == judge.schema_version))


def _reviewed(schema_id: int):  # type: ignore[no-untyped-def]
    return (ItemState.schema_id == schema_id, ItemState.status == "reviewed",
            ItemState.label.is_not(None))


def count_reviewed(session: Session, schema_id: int) -> int:
    return session.scalar(select(func.count()).select_from(ItemState)
                          .where(*_reviewed(schema_id))) or 0


def reviewed_texts(session: Session, schema_id: int) -> list[tuple[str, str]]:
    """(text, label) of the schema's reviewed items with a label: ground truth from people."""
    rows = session.execute(
        select(Item.text, ItemState.label)
        .join(Item, Item.id == ItemState.item_id)
        .where(*_reviewed(schema_id))
        .order_by(ItemState.id)).all()
    return [(text, str(label)) for text, label in rows]
