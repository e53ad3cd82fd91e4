"""Shared by the bench scripts: the label schema, the data and the fixed dev split of train.

Every tuning measurement uses the same split, so numbers from different scripts are comparable:
a fixed random 2,000 items of train (seed 0) is the dev set; the rest of train is the pool that
reviewed items are drawn from. Train items that appear verbatim as schema examples are left out of
the dev set, so no dev item is its own exemplar.
"""

from __future__ import annotations

import random
from pathlib import Path

from app.cli.files import load_rows as read_labelled_rows
from app.cli.files import load_schema
from app.rac.prompts import LabelInfo

DEV_SIZE = 2000
DEV_SEED = 0


def load_labels(schema: Path) -> list[LabelInfo]:
    """The schema file's labels, read and validated as `rac eval` reads them."""
    return load_schema(schema)[2]


def load_rows(data: Path, text_col: str = "text", label_col: str = "category"
              ) -> list[tuple[str, str]]:
    return read_labelled_rows(data, text_col, label_col)


def dev_split(rows: list[tuple[str, str]], labels: list[LabelInfo], size: int = DEV_SIZE,
              seed: int = DEV_SEED) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(dev, pool): `size` random rows that are not schema examples, and all other rows."""
    examples = {e.strip() for label in labels for e in label.examples}
    eligible = [i for i, (text, _) in enumerate(rows) if text.strip() not in examples]
    chosen = set(random.Random(seed).sample(eligible, size))
    dev = [rows[i] for i in sorted(chosen)]
    pool = [row for i, row in enumerate(rows) if i not in chosen]
    return dev, pool
