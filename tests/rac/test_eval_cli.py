"""`rac eval` end to end on a tiny schema and CSV written here, with the real bundled embedder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from app.cli.evaluate import strategy_from_method
from app.rac.prompts import PROMPT_VERSION

SCHEMA = """\
name: tiny
labels:
  - name: weather
    description: The message is about the weather, rain, sun, temperature or the forecast.
    examples: ["Will it rain tomorrow?"]
  - name: cooking
    description: The message is about cooking food, recipes, baking or kitchen equipment.
    examples: ["How long do I bake bread?"]
  - name: football
    description: The message is about football (soccer), matches, goals, teams and players.
    examples: ["Who won the match last night?"]
"""
ROWS = [
    ("Is it going to be sunny this weekend?", "weather"),
    ("The forecast says heavy rain and wind", "weather"),
    ("It is freezing cold outside today", "weather"),
    ("What temperature should the oven be for a cake?", "cooking"),
    ("Give me a recipe for tomato soup", "cooking"),
    ("How do I sharpen my kitchen knives?", "cooking"),
    ("Our team scored three goals in the second half", "football"),
    ("Which players are in the starting eleven?", "football"),
    ("The referee gave a penalty in the final minute", "football"),
    ("Please reset my bank card PIN", "banking"),  # not in the schema: should get no label
]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    schema = tmp_path / "tiny.yaml"
    schema.write_text(SCHEMA)
    data = tmp_path / "tiny.csv"
    with data.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["message", "gold"])
        writer.writerows(ROWS)
    return schema, data


def run(files: tuple[Path, Path], tmp_path: Path, *args: str) -> dict:
    schema, data = files
    out = tmp_path / "report.json"
    result = CliRunner().invoke(main, [
        "eval", "--schema", str(schema), "--data", str(data), "--text-col", "message",
        "--label-col", "gold", "--out", str(out), "--quiet", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "accuracy" in result.output
    return json.loads(out.read_text())


def test_retrieval_report_is_complete_and_sane(files, tmp_path):
    plot = tmp_path / "curve.png"
    report = run(files, tmp_path, "--strategy", "retrieval", "--top-k", "3", "--plot", str(plot))
    m = report["metrics"]
    assert m["n"] == len(ROWS)
    assert m["out_of_scope_rows"] == 1
    # Retrieval always names a label, so the out-of-scope row is wrong: at most 9 of 10.
    assert 0.8 <= m["accuracy"] <= 0.9
    assert 0.0 < m["macro_f1"] <= 1.0
    assert m["labelled_share"] == 1.0
    assert m["llm_calls_per_item"] == 0.0 and m["judge_auc"] is None
    assert m["items_per_second"] > 0 and 0 < m["latency_p50_s"] <= m["latency_p95_s"]
    assert 0.0 <= m["ece"] <= 1.0
    coverages = [p["coverage"] for p in m["precision_coverage"]]
    assert coverages == sorted(coverages, reverse=True) and coverages[0] == 1.0
    # The wrong out-of-scope row caps precision over all items at 0.9: below the 0.95 target.
    assert 0.0 <= m["coverage_at_precision"]["0.95"]["coverage"] <= 0.9
    assert 0.0 <= m["coverage_at_precision"]["0.90"]["coverage"] <= 1.0
    assert report["params"]["strategy"] == "retrieval" and report["params"]["top_k"] == 3
    assert report["models"]["embedder"].startswith("all-MiniLM-L6-v2")
    assert report["schema"]["labels"] == 3 and report["data"]["file"] == "tiny.csv"
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_limit_takes_the_same_sample_for_the_same_seed(files, tmp_path):
    a = run(files, tmp_path, "--strategy", "retrieval", "--limit", "4", "--seed", "7")
    b = run(files, tmp_path, "--strategy", "retrieval", "--limit", "4", "--seed", "7")
    assert a["metrics"]["n"] == 4 and a["sample"] == {"limit": 4, "seed": 7, "n": 4}
    assert a["metrics"]["accuracy"] == b["metrics"]["accuracy"]
    assert a["curve"] == b["curve"]


def test_missing_column_is_a_clear_error(files, tmp_path):
    schema, data = files
    result = CliRunner().invoke(main, ["eval", "--schema", str(schema), "--data", str(data),
                                       "--out", str(tmp_path / "r.json"), "--quiet"])
    assert result.exit_code != 0 and "no column" in result.output


@pytest.mark.slow
def test_rac_with_the_bundled_judge(files, tmp_path):
    report = run(files, tmp_path, "--strategy", "sequential", "--limit", "5", "--top-k", "2",
                 "--accept-threshold", "0.5")
    m = report["metrics"]
    assert m["n"] == 5
    assert 1.0 <= m["llm_calls_per_item"] <= 2.0  # at least the first candidate, at most top_k
    assert m["llm_calls_per_second"] > 0 and 0 < m["llm_time_share"] <= 1.0
    assert m["judge_auc"] is None or 0.0 <= m["judge_auc"] <= 1.0
    assert report["models"]["judge"].startswith("llama.cpp:")
    assert report["prompt_version"] == PROMPT_VERSION
    assert report["params"]["accept_threshold"] == 0.5
    assert sum(m["status_counts"].values()) == 5


def test_judge_cache_reuses_answers_and_asks_only_new_questions(tmp_path):
    from app.rac.judges.caching import CachingJudge
    from app.rac.prompts import LabelInfo, Question
    from tests.rac.fakes import ScriptedJudge

    a, b = LabelInfo("a", "label a"), LabelInfo("b", "label b")
    path = tmp_path / "cache.json"
    first = CachingJudge(ScriptedJudge({("x", "a"): 0.9, ("x", "b"): 0.2}), path)
    assert first.p_yes([Question("x", a), Question("x", b)]) == [0.9, 0.2]
    first.close()
    inner = ScriptedJudge({("x", "a"): 0.1, ("y", "a"): 0.7})  # would answer differently
    again = CachingJudge(inner, path)
    assert again.p_yes([Question("x", a), Question("y", a)]) == [0.9, 0.7]
    assert again.hits == 1 and inner.history == [[("y", "a")]]
    inner.prompt_version = "other"
    fresh = CachingJudge(inner, path)  # a new prompt version never reuses old answers
    assert fresh.p_yes([Question("x", a)]) == [0.1] and fresh.hits == 0


def test_reviewed_items_become_exemplars_and_fit_the_calibrator(files, tmp_path):
    """--reviews-per-label: rows of a reviews CSV join the index as exemplars and the
    calibrator is fitted on the model's decisions about them, as the service does. Here the
    same CSV is the reviews (10 in-scope rows, 3 per label): each test row is then (nearly) its
    own exemplar, so retrieval gets every in-scope row right."""
    report = run(files, tmp_path, "--strategy", "retrieval", "--reviews", str(files[1]),
                 "--reviews-per-label", "3")
    assert report["reviews"] == {"file": "tiny.csv", "per_label": 3, "n": 9}
    assert report["calibrator"]["version"] == 1 and report["calibrator"]["n_reviews"] == 9
    assert report["metrics"]["accuracy"] == 0.9  # 9 in scope right; the banking row gets one


def test_the_old_method_spelling_still_means_the_same_strategy(files, tmp_path):
    old = run(files, tmp_path, "--method", "retrieval", "--limit", "4", "--seed", "7")
    new = run(files, tmp_path, "--strategy", "retrieval", "--limit", "4", "--seed", "7")
    assert old["method"] == new["method"] == "retrieval"
    assert old["metrics"]["accuracy"] == new["metrics"]["accuracy"]
    assert [strategy_from_method(m, v) for m, v in (
        ("rac", "window"), ("rac", None), ("cascade", None), ("all-in-prompt", None))] == [
        "window", "sequential", "cascade", "all-in-prompt"]


def test_the_cutoff_can_be_read_from_the_evaluated_items(files, tmp_path):
    """--cutoff-from items: the target precision becomes the cutoff at which the items' own
    calibrated confidences above it average the target (no gold label used)."""
    report = run(files, tmp_path, "--strategy", "retrieval", "--cutoff-from", "items")
    assert report["cutoff_from"] == "items"
    # the tiny schema has too few examples for a prior: nothing to read a cutoff with
    fitted = bool(report["calibrator"]["weights"])
    assert report["calibrator"]["meta"].get("reference") == ("items" if fitted else None)
    assert report["metrics"]["auto_accepted"]["target_precision"] == 0.95
