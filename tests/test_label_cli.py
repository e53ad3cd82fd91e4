"""`rac label`: a local file labelled by the engine, no server or database (real models)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from app.cli import main
from app.config import get_settings
from tests.helpers import SCHEMAS_DIR

SCHEMA = SCHEMAS_DIR / "demo.yaml"
LABELS = {"billing", "bug_report", "feature_request", "account_access", "cancellation"}
TICKETS = [
    ("t1", "I was charged twice this month, can I get a refund?", "billing"),
    ("t2", "The app crashes every time I open the settings page.", "bug_report"),
    ("t3", "Please add a dark mode.", "feature_request"),
    ("t4", "I forgot my password and the reset email never arrives.", "account_access"),
    ("t5", "Please cancel my subscription at the end of the month.", "cancellation"),
]


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI reads RAC_* settings like the server; point it at a fresh data dir."""
    monkeypatch.setenv("RAC_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


def label(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["label", *args, "--quiet"], catch_exceptions=False)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_retrieval_strategy_labels_a_csv(tmp_path, data_dir):
    data = tmp_path / "tickets.csv"
    data.write_text("ticket,body,channel\n"
                    + "".join(f'{i},"{text}",email\n' for i, text, _ in TICKETS)
                    + "t6,,email\n")  # a bad row: no text
    out = tmp_path / "out" / "labels.jsonl"
    result = label(str(data), "--schema", str(SCHEMA), "--out", str(out), "--text-column",
                   "body", "--id-column", "ticket", "--strategy", "retrieval", "--top-k", "3")
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [t[0] for t in TICKETS]
    # each text is one of its label's examples: the most similar label is the right one
    assert [r["label"] for r in rows] == [t[2] for t in TICKETS]
    for row in rows:
        assert row["labels"] == [row["label"]] and row["status"] in {"accepted", "needs_review"}
        assert 0.0 <= row["confidence"] <= 1.0 and row["judge_calls"] == 0
        assert row["metadata"] == {"channel": "email"} and row["schema"] == "support-demo"
        assert len(row["trace"]) == 3 and {s["label"] for s in row["trace"]} <= LABELS
    assert "labelled 5 items" in result.stderr and "bad rows skipped 1" in result.stderr
    assert "row 6: no text" in result.stderr
    assert list((data_dir / "indexes").rglob("meta.json"))  # the index is kept for next time


def test_parquet_input_and_limit(tmp_path):
    data = tmp_path / "tickets.parquet"
    buffer = io.BytesIO()
    pq.write_table(pa.table({"text": [t[1] for t in TICKETS], "n": list(range(5))}), buffer)
    data.write_bytes(buffer.getvalue())
    out = tmp_path / "labels.jsonl"
    result = label(str(data), "--schema", str(SCHEMA), "--out", str(out), "--strategy",
                   "retrieval", "--limit", "2")
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    assert len(rows) == 2 and rows[1]["metadata"] == {"n": 1}
    assert rows[0]["id"].startswith("txt_")  # the id an upload of this file would give


def test_a_missing_column_is_a_clear_error(tmp_path):
    data = tmp_path / "tickets.csv"
    data.write_text("body\nhello\n")
    result = label(str(data), "--schema", str(SCHEMA), "--out", str(tmp_path / "o.jsonl"),
                   "--strategy", "retrieval")
    assert result.exit_code == 2
    assert "error: the file has no column 'text'" in result.output


@pytest.mark.slow
def test_the_real_judge_labels_the_first_rows(tmp_path):
    data = tmp_path / "tickets.jsonl"
    data.write_text("".join(json.dumps({"id": i, "text": text}) + "\n" for i, text, _ in TICKETS))
    out = tmp_path / "labels.jsonl"
    result = label(str(data), "--schema", str(SCHEMA), "--out", str(out), "--id-column", "id",
                   "--limit", "3", "--strategy", "sequential")
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["t1", "t2", "t3"]
    for row in rows:
        assert row["judge_calls"] >= 1 and row["model_id"]
        assert row["status"] in {"accepted", "needs_review", "no_match"}
        asked = [s for s in row["trace"] if s["p_yes"] is not None]
        assert len(asked) == row["judge_calls"]
        if row["label"] is not None:
            assert row["label"] in LABELS
    assert "judge calls/item" in result.stderr
