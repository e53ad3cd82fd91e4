"""Readers of the local files the commands (and bench/) take: a label schema, a CSV of labelled
texts, a fixed sample of its rows. Problems are `InvalidInput` naming the file, reported by the
command group's error boundary."""

from __future__ import annotations

import csv
import hashlib
import random
from pathlib import Path

from app.errors import AppError, InvalidInput
from app.label_schemas.format import parse_document, validate_schema_document
from app.rac.prompts import LabelInfo


def load_schema(path: Path) -> tuple[str, bool, list[LabelInfo], str]:
    """(name, multi_label, labels, content hash) of a schema file, validated like an upload."""
    media = "application/json" if path.suffix.lower() == ".json" else "application/yaml"
    try:
        doc = validate_schema_document(parse_document(path.read_bytes(), media))
    except AppError as exc:
        raise InvalidInput(f"{path.name}: {exc.detail}") from None
    labels = [LabelInfo(x.name, x.description, tuple(x.examples)) for x in doc.labels]
    return doc.name, doc.multi_label, labels, doc.content_hash()


def load_rows(path: Path, text_col: str, label_col: str) -> list[tuple[str, str]]:
    """(text, gold label) of every row of a CSV; labels are stripped, empty cells are ""."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in (text_col, label_col) if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidInput(f"{path.name} has no column(s) {', '.join(missing)} "
                               f"(columns: {', '.join(reader.fieldnames or [])})")
        return [(row[text_col] or "", (row[label_col] or "").strip()) for row in reader]


def sample_rows(rows: list[tuple[str, str]], limit: int | None, seed: int
                ) -> list[tuple[str, str]]:
    """A fixed random sample (same rows for the same file, limit and seed), in file order."""
    if limit is None or limit >= len(rows):
        return rows
    chosen = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in chosen]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
