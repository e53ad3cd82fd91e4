"""Shared by the bench scripts: the label schema, the data and the fixed dev split of train.

Every tuning measurement uses the same split, so numbers from different scripts are comparable:
a fixed random 2,000 items of train (seed 0) is the dev set; the rest of train is the pool that
reviewed items are drawn from. Train items that appear verbatim as schema examples are left out of
the dev set, so no dev item is its own exemplar.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import yaml

from app.rac.prompts import LabelInfo

DEV_SIZE = 2000
DEV_SEED = 0


def load_labels(schema: Path) -> list[LabelInfo]:
    doc = yaml.safe_load(schema.read_text())
    return [LabelInfo(x["name"], x["description"], tuple(x.get("examples") or ()))
            for x in doc["labels"]]


def load_rows(data: Path, text_col: str = "text", label_col: str = "category"
              ) -> list[tuple[str, str]]:
    with data.open(newline="", encoding="utf-8") as f:
        return [(row[text_col], row[label_col]) for row in csv.DictReader(f)]


def dev_split(rows: list[tuple[str, str]], labels: list[LabelInfo], size: int = DEV_SIZE,
              seed: int = DEV_SEED) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(dev, pool): `size` random rows that are not schema examples, and all other rows."""
    examples = {e.strip() for label in labels for e in label.examples}
    eligible = [i for i, (text, _) in enumerate(rows) if text.strip() not in examples]
    chosen = set(random.Random(seed).sample(eligible, size))
    dev = [rows[i] for i in sorted(chosen)]
    pool = [row for i, row in enumerate(rows) if i not in chosen]
    return dev, pool
