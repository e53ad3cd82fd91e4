"""Which schemas the refit thread refits: every state of a schema's scorer, found in one query
(it asked once per schema before), on both databases."""

from __future__ import annotations

from sqlalchemy import event, select

from app.items.models import Item
from app.label_schemas.models import LabelSchema, SchemaVersion
from app.labelling.models import Exemplar
from app.scorer import service
from app.scorer.models import ScorerVersion
from tests.helpers import demo_schema, seed_labelled_items

VECTOR = bytes(4 * 384)


def _schema_with_exemplars(factory, name: str, n_exemplars: int) -> tuple[int, str, list[int]]:  # type: ignore[no-untyped-def]
    """A schema with `n_exemplars` reviewed items in its exemplar log: (schema id, content hash
    of its latest version, exemplar ids)."""
    rows = [(f"{name}-{i}", f"text {i} of {name}", "label_0", 0.9, "accepted")
            for i in range(max(n_exemplars, 1))]
    seed_labelled_items(factory, "acme", demo_schema(name), rows)
    with factory() as session:
        schema = session.scalars(select(LabelSchema).where(LabelSchema.name == name)).one()
        content_hash = session.scalars(select(SchemaVersion.content_hash).where(
            SchemaVersion.schema_id == schema.id)).one()
        items = session.scalars(select(Item.id).where(Item.external_id.startswith(f"{name}-"))
                                .order_by(Item.id)).all()[:n_exemplars]
        exemplars = [Exemplar(project_id=schema.project_id, schema_id=schema.id, item_id=item,
                              label="label_0", embedder_id="test", vector=VECTOR)
                     for item in items]
        session.add_all(exemplars)
        session.commit()
        return schema.id, content_hash, [e.id for e in exemplars]


def _fitted(factory, schema_id: int, content_hash: str, n_reviews: int, watermark: int) -> None:  # type: ignore[no-untyped-def]
    with factory() as session:
        latest = session.scalars(select(ScorerVersion.version)
                                 .where(ScorerVersion.schema_id == schema_id)).all()
        session.add(ScorerVersion(schema_id=schema_id, version=max(latest, default=0) + 1,
                                  content_hash=content_hash, params=b"", blend=0.5,
                                  n_reviews=n_reviews, exemplar_watermark=watermark,
                                  fit_seconds=0.0))
        session.commit()


def test_due_schemas_are_found_in_one_query(db, session_factory):
    never, _, _ = _schema_with_exemplars(session_factory, "never", 2)
    current, current_hash, ids = _schema_with_exemplars(session_factory, "current", 3)
    _fitted(session_factory, current, current_hash, n_reviews=3, watermark=ids[-1])
    changed, _, ids_changed = _schema_with_exemplars(session_factory, "changed", 2)
    _fitted(session_factory, changed, "an earlier label set", 2, ids_changed[-1])
    behind, behind_hash, ids_behind = _schema_with_exemplars(session_factory, "behind", 12)
    # fitted on 10 reviews; 2 more since >= 10% of 10: due. An older stale version is ignored.
    _fitted(session_factory, behind, "an earlier label set", 5, ids_behind[4])
    _fitted(session_factory, behind, behind_hash, 10, ids_behind[9])
    nearly, nearly_hash, ids_nearly = _schema_with_exemplars(session_factory, "nearly", 21)
    _fitted(session_factory, nearly, nearly_hash, 20, ids_nearly[19])  # 1 new < 10% of 20
    _schema_with_exemplars(session_factory, "no-exemplars", 0)

    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with session_factory() as session:
            due = service.due(session)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert due == sorted([never, changed, behind])
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
