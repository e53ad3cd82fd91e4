"""Export formats: each turns pages of export rows into bytes, a page at a time.

- `jsonl`: one JSON object per line (loads with `datasets.load_dataset("json", ...)`, pandas,
  jq), metadata as a nested object;
- `csv`: one column per metadata field (nested fields dotted, `a.b`), `labels` joined with `|`;
- `parquet`: typed columns, `label` as class indices with the class names in the file's
  Hugging Face features (see `parquet.py`);
- `label-studio`: a JSON array of Label Studio tasks to import. The model's label is a
  prediction (`score` = its confidence) for a person to check; a reviewed label is an
  annotation with its reviewer and time (also in the task's `meta`, which Label Studio keeps on
  import). The item's metadata fields sit in `data` beside `text` and `id`. The labeling config
  they fit (`<Choices name="label" toName="text">` over `<Text name="text" value="$text"/>`) is
  `GET /v1/exports/label-studio-config?schema=...`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, Protocol

from app.exports.parquet import Parquet
from app.exports.rows import COLUMNS, ExportInfo, flatten, metadata_value, record

LABELS_SEPARATOR = "|"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Format(Protocol):
    media_type: str
    extension: str
    metadata_as_columns: bool
    """Whether the format needs every metadata field before its first row."""

    def __init__(self, info: ExportInfo) -> None: ...
    def begin(self) -> bytes: ...
    def page(self, rows: Sequence[Any]) -> bytes: ...
    def end(self) -> bytes: ...


class JsonLines:
    media_type = "application/x-ndjson"
    extension = "jsonl"
    metadata_as_columns = False

    def __init__(self, info: ExportInfo) -> None:
        self.info = info

    def begin(self) -> bytes:
        return b""

    def page(self, rows: Sequence[Any]) -> bytes:
        lines = []
        for r in rows:
            rec = record(r, self.info)
            rec["annotated_at"] = rec["annotated_at"].isoformat()
            lines.append(_dumps(rec) + "\n")
        return "".join(lines).encode()

    def end(self) -> bytes:
        return b""


class Csv:
    media_type = "text/csv; charset=utf-8"
    extension = "csv"
    metadata_as_columns = True

    def __init__(self, info: ExportInfo) -> None:
        self.info = info
        self.columns = [c for c in COLUMNS if c != "metadata"]

    def _lines(self, rows: list[list[Any]]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        return buffer.getvalue().encode()

    def begin(self) -> bytes:
        return self._lines([self.columns + [c.name for c in self.info.metadata_columns]])

    def page(self, rows: Sequence[Any]) -> bytes:
        out = []
        for r in rows:
            rec = record(r, self.info)
            rec["labels"] = LABELS_SEPARATOR.join(rec["labels"])
            rec["annotated_at"] = rec["annotated_at"].isoformat()
            flat = flatten(rec["metadata"])
            line = [rec[c] for c in self.columns]
            line += [metadata_value(flat, c) for c in self.info.metadata_columns]
            out.append(["" if v is None else v for v in line])
        return self._lines(out)

    def end(self) -> bytes:
        return b""


class LabelStudio:
    media_type = "application/json"
    extension = "json"
    metadata_as_columns = False

    def __init__(self, info: ExportInfo) -> None:
        self.info = info
        self.schema_name = info.schema_name
        self._first = True

    @staticmethod
    def _result(labels: Sequence[str]) -> list[dict[str, Any]]:
        if not labels:
            return []  # "none of these labels"
        return [{"from_name": "label", "to_name": "text", "type": "choices",
                 "value": {"choices": list(labels)}}]

    def task(self, r: Any) -> dict[str, Any]:
        task: dict[str, Any] = {"data": {**(r.meta or {}), "text": r.text,
                                         "id": r.external_id}}
        reviewed = r.status == "reviewed"
        # A person's label keeps the model's last decision beside it in the state row.
        model_labels = ([r.model_label] if r.model_label else []) if reviewed \
            else list(r.labels or [])
        model_score = r.model_confidence if reviewed else r.confidence
        if model_labels:
            version = (r.model_id if not reviewed and r.model_id
                       else f"rac:{self.schema_name}:v{r.schema_version}")
            task["predictions"] = [{"model_version": version, "score": model_score,
                                    "result": self._result(model_labels)}]
        if reviewed:
            when = r.annotated_at.isoformat()
            task["annotations"] = [{"result": self._result(list(r.labels or [])),
                                    "ground_truth": True, "created_username": r.source,
                                    "created_at": when, "updated_at": when}]
            task["meta"] = {"reviewed_by": r.source, "reviewed_at": when}
        return task

    def begin(self) -> bytes:
        return b"["

    def page(self, rows: Sequence[Any]) -> bytes:
        if not rows:
            return b""
        text = ",\n".join(_dumps(self.task(r)) for r in rows)
        text = ("\n" if self._first else ",\n") + text
        self._first = False
        return text.encode()

    def end(self) -> bytes:
        return b"\n]\n" if not self._first else b"]\n"


FORMATS: dict[str, type[Format]] = {
    "jsonl": JsonLines, "csv": Csv, "parquet": Parquet, "label-studio": LabelStudio}
