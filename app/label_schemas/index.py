"""A schema version's label index: its labels (descriptions and examples) and every reviewed item
of the schema as an exemplar, kept in sync with the exemplar log that every process appends to.

Labelling classifies against it; judge training and the learnt scorer fit on it.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session

from app.label_schemas import repository
from app.label_schemas.models import LabelSchema, SchemaVersion
from app.rac.index import LabelIndex
from app.rac.prompts import LabelInfo
from app.runtime import Runtime


def labels_of(version: SchemaVersion) -> list[LabelInfo]:
    return [LabelInfo(x["name"], x["description"], tuple(x.get("examples", ())))
            for x in version.content["labels"]]


def index_for(session: Session, runtime: Runtime, schema: LabelSchema,
              version: SchemaVersion) -> LabelIndex:
    """The schema version's label index, with every reviewed item of the schema as exemplar."""
    index = runtime.indexes.get(f"p{schema.project_id}-s{schema.id}", version.content_hash,
                                lambda: labels_of(version))
    sync_exemplars(session, runtime, index, schema.id)
    return index


def private_index_for(session: Session, runtime: Runtime, schema: LabelSchema,
                      version: SchemaVersion) -> LabelIndex:
    """A copy of the schema version's index holding exactly the exemplars this session sees,
    its own uncommitted ones too: for a fit inside a transaction that may still roll back (a
    review's calibrator refit). The shared index learns only committed exemplars, and a reader
    that took an uncommitted row's id as its watermark would skip rows committed after it."""
    shared = runtime.indexes.get(f"p{schema.project_id}-s{schema.id}", version.content_hash,
                                 lambda: labels_of(version))
    copy = LabelIndex.build(shared.labels, runtime.embedder, reuse=shared.vectors_by_hash())
    sync_exemplars(session, runtime, copy, schema.id)
    return copy


def sync_exemplars(session: Session, runtime: Runtime, index: LabelIndex, schema_id: int) -> int:
    """Add exemplars stored since the index last looked (other processes add them too)."""
    rows = repository.exemplars_after(session, schema_id, index.exemplar_watermark)
    if not rows:
        return 0
    model_id = runtime.embedder.model_id
    stale = [i for i, r in enumerate(rows) if r.embedder_id != model_id]
    fresh = runtime.embedder.embed([rows[i].text for i in stale]) if stale else None
    vectors = []
    for i, row in enumerate(rows):
        if row.embedder_id == model_id:
            vectors.append(np.frombuffer(row.vector, dtype=np.float32))
        else:  # stored by another embedding model: embed the text again
            vectors.append(fresh[stale.index(i)])  # type: ignore[index]
    return index.add_exemplars([str(r.item_id) for r in rows], np.stack(vectors),
                               [r.label for r in rows], watermark=rows[-1].id)
