"""The Parquet export: typed columns, one row group per page, streamed as it is written.

`label` holds class indices and `labels` lists of them, with the class names in the file's
Hugging Face features (schema metadata key `huggingface`, the JSON `datasets` itself writes), so
`datasets.load_dataset("parquet", data_files=...)` gives `ClassLabel` and `Sequence(ClassLabel)`
features with the schema's label names, and pandas/pyarrow read plain integers. Rows the model
found no label for have a null `label` and an empty `labels`. Metadata fields are columns of
their own (typed by their values). The key `rac` carries the schema, the label names and which
decision the export took.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from app.exports.rows import COLUMNS, ExportInfo, flatten, metadata_value, record

_ARROW = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string()}
_HF_DTYPE = {"bool": "bool", "int": "int64", "float": "float64", "str": "string"}
_FIXED: dict[str, tuple[pa.DataType, str]] = {
    "id": (pa.string(), "string"), "text": (pa.string(), "string"),
    "confidence": (pa.float64(), "float64"), "status": (pa.string(), "string"),
    "source": (pa.string(), "string"), "job": (pa.string(), "string"),
    "decision": (pa.string(), "string"), "schema": (pa.string(), "string"),
    "schema_version": (pa.int64(), "int64"),
    "annotated_at": (pa.timestamp("us", tz="UTC"), "timestamp[us, tz=UTC]"),
}


def _value(dtype: str) -> dict[str, str]:
    return {"dtype": dtype, "_type": "Value"}


class _Sink:
    """A write-only file that hands over what was written since the last call: the Parquet
    writer asks for its position (`tell`) to record offsets, so it must count every byte."""

    closed = False

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class Parquet:
    media_type = "application/vnd.apache.parquet"
    extension = "parquet"
    metadata_as_columns = True

    def __init__(self, info: ExportInfo) -> None:
        self.info = info
        self.index = {name: i for i, name in enumerate(info.label_names)}
        class_label: dict[str, Any] = {"names": list(info.label_names), "_type": "ClassLabel"}
        fields: list[pa.Field] = []
        features: dict[str, Any] = {}
        for name in COLUMNS:
            if name == "metadata":
                continue
            if name == "label":
                fields.append(pa.field(name, pa.int64()))
                features[name] = class_label
            elif name == "labels":
                fields.append(pa.field(name, pa.list_(pa.int64())))
                # "Sequence" is what every `datasets` release reads (4.x maps it to List)
                features[name] = {"feature": class_label, "_type": "Sequence"}
            else:
                arrow_type, dtype = _FIXED[name]
                fields.append(pa.field(name, arrow_type))
                features[name] = _value(dtype)
        for column in info.metadata_columns:
            fields.append(pa.field(column.name, _ARROW[column.kind]))
            features[column.name] = _value(_HF_DTYPE[column.kind])
        metadata = {
            "huggingface": json.dumps({"info": {"features": features}}),
            "rac": json.dumps({"schema": info.schema_name, "decision": info.decision,
                               "label_names": list(info.label_names),
                               "multi_label": info.multi_label}),
        }
        self.schema = pa.schema(fields, metadata=metadata)
        self._sink = _Sink()
        self._writer = pq.ParquetWriter(pa.PythonFile(self._sink, mode="w"), self.schema)

    def _class(self, name: str) -> int:
        return self.index[name]

    def begin(self) -> bytes:
        return self._sink.take()

    def page(self, rows: Sequence[Any]) -> bytes:
        if not rows:
            return b""
        columns: dict[str, list[Any]] = {f.name: [] for f in self.schema}
        for r in rows:
            rec = record(r, self.info)
            rec["label"] = None if rec["label"] is None else self._class(rec["label"])
            rec["labels"] = [self._class(x) for x in rec["labels"]]
            for name in COLUMNS:
                if name != "metadata":
                    columns[name].append(rec[name])
            flat = flatten(rec["metadata"])
            for column in self.info.metadata_columns:
                columns[column.name].append(metadata_value(flat, column))
        self._writer.write_table(pa.table(columns, schema=self.schema))
        return self._sink.take()

    def end(self) -> bytes:
        self._writer.close()
        return self._sink.take()
