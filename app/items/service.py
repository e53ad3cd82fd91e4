"""Ingesting items: bulk, idempotent on the item id."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, InvalidInput
from app.items import repository
from app.items.api import ItemIn
from app.items.ids import text_id


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class IngestResult:
    ids: list[str]
    created: int
    existing: int
    item_pks: list[int | None] = field(default_factory=list)
    """Internal item ids in the order posted; None where the item was refused (a conflict)."""
    conflicts: dict[int, str] = field(default_factory=dict)
    """Position -> reason, for items refused with `skip_conflicts` (the rest were stored)."""


def ingest(session: Session, project_id: int, items: Sequence[ItemIn], *,
           skip_conflicts: bool = False) -> IngestResult:
    """Store new items; items whose id exists with the same text change nothing.

    All or nothing by default: if any id exists with a different text the request is refused
    (409) and nothing is stored, so a client can fix its data and post the same batch again.
    With `skip_conflicts` (file uploads, where one bad row must not sink a million good ones)
    such items are left out and reported in `conflicts`; every other item is stored.
    """
    ids = [item.id or text_id(item.text) for item in items]
    hashes = [text_hash(item.text) for item in items]
    conflicts: dict[int, str] = {}
    inserted = 0
    first_seen: dict[str, int] = {}
    for position, (item_id, digest) in enumerate(zip(ids, hashes, strict=True)):
        if item_id in first_seen:
            if hashes[first_seen[item_id]] != digest:
                if not skip_conflicts:
                    raise InvalidInput(f"items[{position}]: id {item_id!r} appears twice in "
                                       "this request with different texts")
                conflicts[position] = (f"id {item_id!r} appears earlier in the same batch with "
                                       "a different text")
            continue
        first_seen[item_id] = position
    stored = repository.stored_by_external_id(session, project_id, list(first_seen))
    refused = _changed_texts(stored, {i: hashes[p] for i, p in first_seen.items()},
                             raise_=not skip_conflicts)
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {"project_id": project_id, "external_id": item_id, "text": items[p].text,
         "text_hash": hashes[p], "meta": items[p].metadata, "created_at": now}
        for item_id, p in first_seen.items() if item_id not in stored
    ]
    if rows:
        inserted = repository.insert_new_items(session, rows)
        after = repository.stored_by_external_id(session, project_id,
                                                 [r["external_id"] for r in rows])
        raced = _changed_texts(after, {r["external_id"]: r["text_hash"] for r in rows},
                               raise_=not skip_conflicts)
        refused |= raced
        stored.update(after)
    for position, item_id in enumerate(ids):
        if item_id in refused and position not in conflicts:
            conflicts[position] = f"id {item_id!r} exists with a different text"
    created = inserted
    existing = len(first_seen) - len(refused) - created
    pks = [None if p in conflicts else stored[i][0] for p, i in enumerate(ids)]
    return IngestResult(ids=ids, created=created, existing=existing, item_pks=pks,
                        conflicts=conflicts)


def _changed_texts(stored: dict[str, tuple[int, str]], posted: dict[str, str], *,
                   raise_: bool) -> set[str]:
    """Ids stored with another text than posted; a 409 (nothing stored) if `raise_`."""
    changed = [i for i, (_, digest) in stored.items() if posted.get(i, digest) != digest]
    if changed and raise_:
        shown = ", ".join(repr(i) for i in changed[:10])
        more = f" and {len(changed) - 10} more" if len(changed) > 10 else ""
        raise Conflict(f"these ids exist with a different text: {shown}{more}; nothing was "
                       "stored", extra={"conflicting_ids": changed[:1000]})
    return set(changed)
