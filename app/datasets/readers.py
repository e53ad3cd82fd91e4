"""Streaming readers for tabular files: CSV, JSONL and Parquet, one record at a time.

Nothing here reads a whole file: CSV goes through a text wrapper over the binary file, JSONL is
read line by line with a cap on a line's length, Parquet in record batches. Memory therefore
stays flat whatever the file's size (Parquet: bounded by one row group). A record that cannot
be read is yielded with its reason, so one bad row never ends the file; only a file that cannot
be read at all (empty, not UTF-8, not Parquet, no such column) raises `InvalidInput`.

Used by the dataset upload and by `rac label`, so both read files the same way.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Any

from app.errors import InvalidInput

FORMATS = ("csv", "jsonl", "parquet")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
               ".pq": "parquet"}
MAX_LINE_BYTES = 1 << 20
"""A JSONL line longer than this is a bad row (an item's text and metadata are far smaller)."""
_PARQUET_BATCH = 1_000

# A CSV field may be as long as a JSONL line; the csv module's default cap (128 KiB) would end
# the whole file at the first long field. The setting is process-wide, hence set once here.
csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))


@dataclass(frozen=True)
class Record:
    row: int
    """1-based number of the record: CSV data rows after the header, JSONL lines."""
    values: dict[str, Any] | None
    """Column -> value; None when the record could not be read (see `error`)."""
    error: str | None = None


def detect_format(filename: str | None, declared: str | None) -> str:
    """The file's format: `declared` if given, else from the filename's extension."""
    if declared:
        fmt = declared.strip().lower()
        if fmt not in FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, not {declared!r}")
        return fmt
    suffix = PurePath(filename or "").suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    raise InvalidInput(f"cannot tell the format of {filename or 'the file'!r}: name it .csv, "
                       ".jsonl or .parquet, or send a format field (csv, jsonl, parquet)")


DEFAULT_ID_COLUMN = "id"


class Table:
    """An open file: its columns (if the format declares them) and its records, read once."""

    def __init__(self, columns: list[str] | None, records: Iterator[Record]) -> None:
        self.columns = columns
        """Column names from the header or schema; None for JSONL (each line has its own)."""
        self.records = records

    def id_column(self, given: str | None, text_column: str) -> str | None:
        """The column of item ids: the one given, else a column named `id` when the file has
        one (JSONL: when its first record has one), else None (ids derived from the text)."""
        if given is not None or text_column == DEFAULT_ID_COLUMN:
            return given
        if self.columns is not None:
            return DEFAULT_ID_COLUMN if DEFAULT_ID_COLUMN in self.columns else None
        first = next(self.records, None)
        if first is None:
            return None
        self.records = itertools.chain([first], self.records)
        return DEFAULT_ID_COLUMN if first.values and DEFAULT_ID_COLUMN in first.values else None

    def require_columns(self, *names: str | None) -> None:
        if self.columns is None:
            return  # JSONL: checked against the records themselves, at the end
        for name in names:
            if name is not None and name not in self.columns:
                shown = ", ".join(repr(c) for c in self.columns[:50])
                raise InvalidInput(f"the file has no column {name!r}; its columns are: {shown}")


def open_table(file: IO[bytes], fmt: str) -> Table:
    """Open a binary, seekable file as a table of records."""
    file.seek(0, io.SEEK_END)
    if file.tell() == 0:
        raise InvalidInput("the file is empty")
    file.seek(0)
    if fmt == "csv":
        return _csv_table(file)
    if fmt == "jsonl":
        return Table(None, _jsonl_records(file))
    if fmt == "parquet":
        return _parquet_table(file)
    raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def _not_utf8(after_row: int) -> InvalidInput:
    return InvalidInput(f"the file is not UTF-8 text (the bytes after row {after_row} are not); "
                        "save it as UTF-8 and upload it again")


class _RecordTooLong(Exception):
    """A record ran past MAX_LINE_BYTES without ending (raised by the line source)."""


class _CsvLines:
    """The file's lines from a byte offset, decoded one at a time, for `csv.reader`.

    Strict CSV needs to start again just after the first line of a record that never ended (an
    unterminated quote): the csv module would otherwise read the rest of the file into one field.
    So the lines come from here, and each record's first line and byte offset are known. A
    record may span at most MAX_LINE_BYTES: past that it is a bad row, not a 1 GiB field.
    """

    def __init__(self, file: IO[bytes], offset: int, line_no: int) -> None:
        self.file = file
        self.offset = offset
        """Byte offset of the next line to be read."""
        self.line_no = line_no
        """Number of the next line to be read (1-based)."""
        self.record_start = (offset, line_no)
        self.record_bytes = 0
        file.seek(offset)

    def start_record(self) -> None:
        self.record_start = (self.offset, self.line_no)
        self.record_bytes = 0

    def __iter__(self) -> Iterator[str]:
        # A generator, not __next__: this runs once per line of every upload.
        readline, limit = self.file.readline, MAX_LINE_BYTES
        first = self.offset == 0
        while raw := readline(limit + 1):
            self.offset += len(raw)
            self.line_no += 1
            self.record_bytes += len(raw)
            if self.record_bytes > limit:
                raise _RecordTooLong
            if first:
                first = False
                if raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # the byte-order mark spreadsheet programs write
            # A line ends at b"\n", which never occurs inside a UTF-8 character: lines decode
            # alone.
            yield raw.decode("utf-8")


def _csv_reader(lines: _CsvLines) -> Any:
    # strict: a file that ends inside a quoted field, or a quote followed by text, is an error
    # the reader reports instead of silently reading on.
    return csv.reader(lines, strict=True)


def _csv_table(file: IO[bytes]) -> Table:
    lines = _CsvLines(file, 0, 1)
    reader = _csv_reader(lines)
    header: list[str] | None = None
    try:
        while header is None:
            lines.start_record()
            fields = next(reader, None)
            if fields is None:
                break
            header = fields or None
    except UnicodeDecodeError:
        raise _not_utf8(0) from None
    except (csv.Error, _RecordTooLong) as exc:
        reason = _csv_problem(exc, lines.record_start[1])
        raise InvalidInput(f"the CSV header cannot be read: {reason}") from None
    if header is None:
        raise InvalidInput("the file has no header row")
    header = [name.strip() for name in header]
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise InvalidInput(f"the header names column(s) more than once: {', '.join(duplicates)}")
    return Table(header, _csv_records(file, lines, reader, header))


MAX_REREAD_BYTES = 256 << 20
"""Bytes read twice (a broken record is read again from its second line) before the file is
refused as not CSV. An unterminated quote costs up to MAX_LINE_BYTES of re-reading; a file full
of them would otherwise cost that for every line."""


def _csv_problem(exc: Exception, line_no: int) -> str:
    if isinstance(exc, _RecordTooLong) or "field larger than field limit" in str(exc):
        return (f"the record starting on line {line_no} is longer than {MAX_LINE_BYTES} bytes "
                "(an unterminated quote?)")
    if "unexpected end of data" in str(exc):
        return f"unterminated quote: the quoted field on line {line_no} never closes"
    return f"unreadable CSV in the record starting on line {line_no}: {exc}"


def _next_line(file: IO[bytes], offset: int) -> int:
    """Offset of the line after the one starting at `offset` (however long that one is)."""
    file.seek(offset)
    while True:
        part = file.readline(MAX_LINE_BYTES)
        offset += len(part)
        if not part or part.endswith(b"\n"):
            return offset


def _csv_records(file: IO[bytes], lines: _CsvLines, reader: Any,
                 header: list[str]) -> Iterator[Record]:
    row = reread = 0
    while True:
        lines.start_record()
        try:
            fields = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise _not_utf8(row) from None
        except (csv.Error, _RecordTooLong) as exc:
            row += 1
            start_offset, start_line = lines.record_start
            yield Record(row, None, _csv_problem(exc, start_line))
            restart = _next_line(file, start_offset)
            reread += lines.offset - restart
            if reread > MAX_REREAD_BYTES:
                raise InvalidInput(f"too many CSV records never end or cannot be read (the last "
                                   f"at line {start_line}: unbalanced quotes?); the file is not "
                                   "read as CSV") from None
            # Start again on the record's second line: only the broken record is lost.
            lines = _CsvLines(file, restart, start_line + 1)
            reader = _csv_reader(lines)
            continue
        if not fields:
            continue  # a blank line
        row += 1
        if len(fields) != len(header):
            yield Record(row, None, f"has {len(fields)} fields; the header has {len(header)}")
            continue
        yield Record(row, dict(zip(header, fields, strict=True)))


def _jsonl_records(file: IO[bytes]) -> Iterator[Record]:
    line_no = 0
    while True:
        line = file.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        line_no += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # skip the rest of the long line
                line = file.readline(MAX_LINE_BYTES)
            yield Record(line_no, None, f"the line is longer than {MAX_LINE_BYTES} bytes")
            continue
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except UnicodeDecodeError:
            yield Record(line_no, None, "the line is not UTF-8 text")
            continue
        except (ValueError, RecursionError) as exc:  # also a number of > 4,300 digits
            yield Record(line_no, None, f"malformed JSON: {exc}")
            continue
        if not isinstance(value, dict):
            yield Record(line_no, None, f"the line is a JSON {type(value).__name__}, "
                                        "not an object")
            continue
        yield Record(line_no, value)


def _parquet_table(file: IO[bytes]) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidInput(f"the file is not a readable Parquet file: {exc}") from None
    return Table(list(parquet.schema_arrow.names), _parquet_records(parquet))


def _parquet_records(parquet: Any) -> Iterator[Record]:
    import pyarrow as pa

    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH):
            for values in batch.to_pylist():
                row += 1
                yield Record(row, values)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"the Parquet file cannot be read after row {row}: {exc}") from None
