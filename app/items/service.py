"""Ingesting items: bulk, idempotent on the item id."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, InvalidInput
from app.items import repository
from app.items.api import ItemIn
from app.items.models import Item


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_item_id() -> str:
    return "itm_" + secrets.token_hex(10)


@dataclass(frozen=True)
class IngestResult:
    ids: list[str]
    created: int
    existing: int


def ingest(session: Session, project_id: int, items: Sequence[ItemIn]) -> IngestResult:
    """Store new items; items whose id exists with the same text change nothing.

    All or nothing: if any id exists with a different text the request is refused (409) and
    nothing is stored, so a client can fix its data and post the same batch again.
    """
    ids = [item.id or new_item_id() for item in items]
    hashes = [text_hash(item.text) for item in items]
    first_seen: dict[str, int] = {}
    for position, (item_id, digest) in enumerate(zip(ids, hashes, strict=True)):
        if item_id in first_seen:
            if hashes[first_seen[item_id]] != digest:
                raise InvalidInput(f"items[{position}]: id {item_id!r} appears twice in this "
                                   "request with different texts")
            continue
        first_seen[item_id] = position
    unique_ids = list(first_seen)
    stored = repository.hashes_by_external_id(session, project_id, unique_ids)
    _refuse_changed_texts(stored, {i: hashes[p] for i, p in first_seen.items()})
    now = utcnow()
    rows = [
        {"project_id": project_id, "external_id": item_id, "text": items[p].text,
         "text_hash": hashes[p], "meta": items[p].metadata, "created_at": now}
        for item_id, p in first_seen.items() if item_id not in stored
    ]
    if rows:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" \
            else sqlite.insert
        # DO NOTHING: a concurrent request may have stored the same id since we looked.
        session.execute(insert(Item).on_conflict_do_nothing(
            index_elements=["project_id", "external_id"]), rows)
        raced = [r["external_id"] for r in rows]
        after = repository.hashes_by_external_id(session, project_id, raced)
        _refuse_changed_texts(after, {r["external_id"]: r["text_hash"] for r in rows})
    return IngestResult(ids=ids, created=len(rows), existing=len(unique_ids) - len(rows))


def _refuse_changed_texts(stored: dict[str, str], posted: dict[str, str]) -> None:
    changed = [i for i, digest in stored.items() if posted.get(i, digest) != digest]
    if changed:
        shown = ", ".join(repr(i) for i in changed[:10])
        more = f" and {len(changed) - 10} more" if len(changed) > 10 else ""
        raise Conflict(f"these ids exist with a different text: {shown}{more}; nothing was "
                       "stored", extra={"conflicting_ids": changed[:1000]})
