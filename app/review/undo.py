"""Undo a review: the item goes back to the decision it had before, and out of the label index.

A slip (a wrong key, a wrong search result) must not stay ground truth: the review's annotation is
deleted rather than kept, so it counts nowhere (history, agreement, calibration), and the item's
current state is the annotation before it again (usually the model's). The index forgets the
exemplar through the same append-only exemplar log every process syncs from: a new row for the
item with the earlier reviewed label, or with no label, which removes it.

The item comes back leased to the person who undid it, so their page shows it again at once and
nobody else picks it up in between.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from app.auth.models import Role
from app.auth.service import Principal
from app.db import utcnow
from app.errors import Conflict, Forbidden
from app.items.models import Item
from app.label_schemas.models import LabelSchema
from app.labelling.models import Exemplar
from app.review import repository
from app.review.service import Leased, schema_for_item


@dataclass
class Undone:
    schema: LabelSchema
    restored: Leased | None
    """The item as it is now; None if it had no decision before the review."""


def undo_review(session: Session, principal: Principal, item: Item, schema_name: str | None,
                lease_seconds: int) -> Undone:
    """Take back the item's current review. Only its reviewer (or an admin) may; a review that
    someone has since replaced is not the current one and cannot be undone (Conflict)."""
    schema = schema_for_item(session, principal, item, schema_name)
    state = repository.state_of(session, item.id, schema.id)
    if state is None or state.status != "reviewed":
        raise Conflict(f"item {item.external_id!r} has no review under {schema.name!r} to undo")
    current = repository.get_annotation(session, state.annotation_id)
    assert current is not None  # the foreign key guarantees it
    if current.reviewer_key_id != principal.key_id and not principal.role.allows(Role.admin):
        raise Forbidden(f"item {item.external_id!r} was last reviewed by {current.source!r}; "
                        "only that reviewer or an admin can undo it")
    previous = repository.annotation_before(session, item.id, schema.id, current.id)
    _forget_exemplar(session, schema.project_id, schema.id, item.id,
                     previous.label if previous is not None and previous.status == "reviewed"
                     else None)
    if previous is None:
        session.delete(state)
        session.flush()
        session.delete(current)
        return Undone(schema, None)
    now = utcnow()
    state.annotation_id = previous.id
    state.schema_version = previous.schema_version
    state.label = previous.label
    state.confidence = previous.confidence
    state.status = previous.status
    state.updated_at = now
    if previous.status != "reviewed":  # back in the queue: held for the person who undid it
        state.lease_owner = principal.key_id
        state.lease_token = secrets.token_hex(16)
        state.lease_expires_at = now + timedelta(seconds=lease_seconds)
    session.flush()
    repository.delete_annotation(session, current.id)
    session.expire(state)
    return Undone(schema, Leased(item, state, previous))


def retract_review(session: Session, schema: LabelSchema, item: Item) -> bool:
    """Withdraw a review made elsewhere (an annotation deleted in Label Studio): the item's
    current label goes back to the model's last decision (or the item leaves the schema if the
    model never labelled it) and out of the label index. Unlike an undo, the review's annotation
    stays in the history: it was a person's real decision, later withdrawn. True if there was
    a review."""
    state = repository.state_of(session, item.id, schema.id)
    if state is None or state.status != "reviewed":
        return False
    _forget_exemplar(session, schema.project_id, schema.id, item.id, None)
    model = (repository.get_annotation(session, state.model_annotation_id)
             if state.model_annotation_id is not None else None)
    if model is None:
        session.delete(state)
    else:
        state.annotation_id, state.schema_version = model.id, model.schema_version
        state.label, state.confidence, state.status = model.label, model.confidence, model.status
        state.updated_at = utcnow()
    session.flush()
    return True


def _forget_exemplar(session: Session, project_id: int, schema_id: int, item_id: int,
                     label: str | None) -> None:
    """Append an exemplar row that replaces the item's last one: `label` None takes the item out
    of the index. The vector is the one already stored (no re-embedding for an undo)."""
    last = repository.last_exemplar(session, schema_id, item_id)
    if last is None:
        return
    session.add(Exemplar(project_id=project_id, schema_id=schema_id, item_id=item_id,
                         label=label, embedder_id=last.embedder_id, vector=last.vector))
    session.flush()
