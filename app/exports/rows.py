"""What every export format writes about an item: the record, and metadata as flat columns.

`decision` in each record says which decision the row carries: `job` (what the job asked for
wrote; `job` names it), `reviewed` (a person's label) or `latest` (the model's latest decision).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

COLUMNS = ("id", "text", "label", "labels", "confidence", "status", "source", "job", "decision",
           "schema", "schema_version", "metadata", "annotated_at")


@dataclass(frozen=True)
class MetadataColumn:
    """One metadata field as a column: `key` is its dotted path in the item's metadata."""

    key: str
    name: str
    kind: str
    """`bool`, `int`, `float` or `str` (anything else, such as a list, is written as JSON text)."""


@dataclass(frozen=True)
class ExportInfo:
    """What a format needs to know before the first row."""

    schema_name: str
    decision: str = "latest"
    """Which decision the export took, in words: `latest`, `job <id>` or `latest, items of job
    <id>`."""
    by_job: bool = False
    """Rows carry one job's decisions (not the items' latest)."""
    label_names: tuple[str, ...] = ()
    multi_label: bool = False
    metadata_columns: tuple[MetadataColumn, ...] = field(default=())


def record(row: Any, info: ExportInfo) -> dict[str, Any]:
    """One exported item: its label under the schema and who decided it."""
    return {"id": row.external_id, "text": row.text, "label": row.label,
            "labels": list(row.labels or []), "confidence": row.confidence,
            "status": row.status, "source": row.source, "job": row.job,
            "decision": "job" if info.by_job else
            ("reviewed" if row.status == "reviewed" else "latest"),
            "schema": info.schema_name, "schema_version": row.schema_version,
            "metadata": row.meta or {}, "annotated_at": row.annotated_at}


def flatten(meta: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings become dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    flat: dict[str, Any] = {}
    for key, value in meta.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


def metadata_columns(pages: Iterable[list[dict[str, Any]]]) -> tuple[MetadataColumn, ...]:
    """A column per metadata field seen in any item, in key order (PostgreSQL's JSONB keeps no
    insertion order, so first-seen order would differ by database), typed by every value it
    holds (ints and floats together are floats; any other mix is text). A field named like a
    built-in column is prefixed `metadata.` so nothing is overwritten."""
    kinds: dict[str, set[str]] = {}
    for page in pages:
        for meta in page:
            for key, value in flatten(meta).items():
                seen = kinds.setdefault(key, set())
                kind = _kind(value)
                if kind is not None:
                    seen.add(kind)
    columns = []
    for key, seen in sorted(kinds.items()):
        if seen <= {"int", "float"} and seen:
            kind = "float" if "float" in seen else "int"
        elif seen == {"bool"}:
            kind = "bool"
        else:
            kind = "str"
        name = f"metadata.{key}" if key in COLUMNS else key
        columns.append(MetadataColumn(key, name, kind))
    return tuple(columns)


def metadata_value(flat: dict[str, Any], column: MetadataColumn) -> Any:
    """The field's value in the column's type (None when the item lacks it)."""
    value = flat.get(column.key)
    if value is None:
        return None
    if column.kind == "float":
        return float(value)
    if column.kind == "str" and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value
