"""Export formats: each turns pages of export rows into text, a page at a time.

- `jsonl`: one JSON object per line (loads with `datasets.load_dataset("json", ...)`, pandas,
  jq); `csv`: the same columns, lists and metadata as JSON text;
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

COLUMNS = ("id", "text", "label", "labels", "confidence", "status", "source", "schema",
           "schema_version", "metadata", "annotated_at")


def record(row: Any, schema_name: str) -> dict[str, Any]:
    """One exported item: its current label under the schema and who decided it."""
    return {"id": row.external_id, "text": row.text, "label": row.label,
            "labels": list(row.labels or []), "confidence": row.confidence,
            "status": row.status, "source": row.source, "schema": schema_name,
            "schema_version": row.schema_version, "metadata": row.meta or {},
            "annotated_at": row.annotated_at.isoformat()}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Format(Protocol):
    media_type: str
    extension: str

    def begin(self) -> str: ...
    def page(self, rows: Sequence[Any]) -> str: ...
    def end(self) -> str: ...


class JsonLines:
    media_type = "application/x-ndjson"
    extension = "jsonl"

    def __init__(self, schema_name: str) -> None:
        self.schema_name = schema_name

    def begin(self) -> str:
        return ""

    def page(self, rows: Sequence[Any]) -> str:
        return "".join(_dumps(record(r, self.schema_name)) + "\n" for r in rows)

    def end(self) -> str:
        return ""


class Csv:
    media_type = "text/csv; charset=utf-8"
    extension = "csv"

    def __init__(self, schema_name: str) -> None:
        self.schema_name = schema_name

    def _lines(self, rows: list[list[Any]]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        return buffer.getvalue()

    def begin(self) -> str:
        return self._lines([list(COLUMNS)])

    def page(self, rows: Sequence[Any]) -> str:
        out = []
        for r in rows:
            rec = record(r, self.schema_name)
            rec["labels"] = _dumps(rec["labels"])
            rec["metadata"] = _dumps(rec["metadata"])
            out.append(["" if rec[c] is None else rec[c] for c in COLUMNS])
        return self._lines(out)

    def end(self) -> str:
        return ""


class LabelStudio:
    media_type = "application/json"
    extension = "json"

    def __init__(self, schema_name: str) -> None:
        self.schema_name = schema_name
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

    def begin(self) -> str:
        return "["

    def page(self, rows: Sequence[Any]) -> str:
        if not rows:
            return ""
        text = ",\n".join(_dumps(self.task(r)) for r in rows)
        text = ("\n" if self._first else ",\n") + text
        self._first = False
        return text

    def end(self) -> str:
        return "\n]\n" if not self._first else "]\n"


FORMATS: dict[str, type[JsonLines] | type[Csv] | type[LabelStudio]] = {
    "jsonl": JsonLines, "csv": Csv, "label-studio": LabelStudio}
