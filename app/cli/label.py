"""`rac label`: label a local CSV, JSONL or Parquet file with the engine; no server, no database.

The file is read with the same streaming readers and row rules as a dataset upload (so ids are
the ones an upload would give), the label index comes from the same index store as the server's
(under RAC_DATA_DIR, reused across runs), and `Engine.classify` labels chunks of items exactly as
a batch job does. Results are written as they come, one JSON object per line.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import click

from app.cli.files import load_schema
from app.datasets.readers import FORMATS, detect_format, open_table
from app.datasets.rows import BadRow, to_item
from app.items.api import ItemIn

STRATEGIES = ("cascade", "sequential", "window", "retrieval")


@dataclass
class LabelRun:
    items: int = 0
    bad_rows: int = 0
    judge_calls: int = 0
    seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.items / self.seconds if self.seconds else 0.0
        per_item = self.judge_calls / self.items if self.items else 0.0
        counts = ", ".join(f"{s} {self.statuses.get(s, 0)}"
                           for s in ("accepted", "needs_review", "no_match"))
        lines = [f"labelled {self.items} items in {self.seconds:.1f} s ({rate:.1f} items/s): "
                 f"{counts}",
                 f"judge calls/item {per_item:.2f}; bad rows skipped {self.bad_rows}"]
        lines += [f"  {e}" for e in self.first_errors]
        return "\n".join(lines)


def _items(file: IO[bytes], fmt: str, text_column: str, id_column: str | None,
           run: LabelRun) -> Iterator[ItemIn]:
    table = open_table(file, fmt)
    id_column = table.id_column(id_column, text_column)
    table.require_columns(text_column, id_column)
    for record in table.records:
        try:
            if record.values is None:
                raise BadRow(record.error or "unreadable")
            yield to_item(record.values, text_column, id_column)
        except BadRow as exc:
            run.bad_rows += 1
            if len(run.first_errors) < 5:
                run.first_errors.append(f"row {record.row}: {exc}")


def _chunks(items: Iterator[ItemIn], size: int, limit: int | None) -> Iterator[list[ItemIn]]:
    chunk: list[ItemIn] = []
    for taken, item in enumerate(items, 1):
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
        if limit is not None and taken >= limit:
            break  # --limit stops reading the file, not only labelling
    if chunk:
        yield chunk


def run_label(*, file: Path, schema: Path, out: Path, text_column: str, id_column: str | None,
              fmt: str | None, top_k: int | None, cutoff: float | None,
              accept_threshold: float | None, strategy: str | None, limit: int | None,
              batch_size: int, progress: bool = True) -> LabelRun:
    from tqdm import tqdm

    from app.config import get_settings
    from app.rac.decision import ClassifyParams
    from app.rac.engine import Engine
    from app.rac.index_store import IndexStore
    from app.runtime import make_embedder, make_judge

    settings = get_settings()
    name, multi_label, labels, content_hash = load_schema(schema)
    defaults = settings.engine
    params = ClassifyParams(
        top_k=top_k or defaults.top_k,
        cutoff=defaults.cutoff if cutoff is None else cutoff,
        target_precision=defaults.target_precision if cutoff is None else None,
        accept_threshold=defaults.accept_threshold if accept_threshold is None
        else accept_threshold,
        strategy=strategy or defaults.strategy,  # type: ignore[arg-type]
        multi_label=multi_label)
    embedder = make_embedder(settings.embedder, settings.data_dir)
    # The retrieval baseline needs no LLM: do not load one.
    judge = None if params.strategy == "retrieval" else make_judge(settings.llm, settings.data_dir)
    engine = Engine(embedder, judge)
    index = IndexStore(settings.index_dir, embedder).get(f"file-{name}", content_hash,
                                                         lambda: labels)
    from app.rac.prior import fit_prior

    # No reviews outside the service: the prior from the schema's examples calibrates.
    calibrator = fit_prior(index, params.top_k, judge if params.strategy == "cascade" else None,
                           params.target_precision or 0.95)
    run = LabelRun()
    fmt = detect_format(file.name, fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with file.open("rb") as source, out.open("w", encoding="utf-8") as sink, \
            tqdm(total=limit, unit="item", file=sys.stderr, disable=not progress,
                 desc=name) as bar:
        for chunk in _chunks(_items(source, fmt, text_column, id_column, run), batch_size,
                             limit):
            decisions = engine.classify([item.text for item in chunk], index, params,
                                        calibrator=calibrator)
            for item, decision in zip(chunk, decisions, strict=True):
                sink.write(json.dumps(_output(item, decision, name), ensure_ascii=False) + "\n")
                run.statuses[decision.status] += 1
                run.judge_calls += decision.judge_calls
            run.items += len(chunk)
            bar.update(len(chunk))
    run.seconds = time.perf_counter() - started
    return run


def _output(item: ItemIn, decision: Any, schema_name: str) -> dict[str, Any]:
    return {"id": item.id, "text": item.text, "label": decision.label,
            "labels": decision.labels, "confidence": decision.confidence,
            "status": decision.status, "source": "model", "schema": schema_name,
            "metadata": item.metadata, "judge_calls": decision.judge_calls,
            "model_id": decision.model_id or None,
            "prompt_version": decision.prompt_version or None,
            "trace": [vars(step) for step in decision.trace]}


@click.command("label")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--schema", "schema", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="label schema FILE (YAML or JSON; local, no server)")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="write one JSON object per item here (JSONL)")
@click.option("--text-column", default="text", show_default=True)
@click.option("--id-column", default=None, help="column of item ids [default: a column "
              "named `id` if the file has one, else derived from the text, as an upload does]")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="file format [default: from the extension]")
@click.option("--top-k", type=click.IntRange(1, 100), default=None,
              help="candidate labels per item [default: the engine setting]")
@click.option("--cutoff", type=click.FloatRange(0, 1), default=None,
              help="confidence at or above which a label needs no review [default: setting]")
@click.option("--accept-threshold", type=click.FloatRange(0, 1), default=None,
              help="P(yes) that accepts a candidate [default: the engine setting]")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=None,
              help="sequential or window ask the LLM; retrieval takes the most similar label "
                   "without one [default: the engine setting]")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="label only the first N good rows")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, 4096),
              help="items per Engine.classify call")
@click.option("--quiet", is_flag=True, help="no progress bar")
def label_command(file: Path, schema: Path, out: Path, text_column: str, id_column: str | None,
                  fmt: str | None, top_k: int | None, cutoff: float | None,
                  accept_threshold: float | None, strategy: str | None, limit: int | None,
                  batch_size: int, quiet: bool) -> None:
    """Label FILE (CSV, JSONL or Parquet) with the engine and write the decisions to --out."""
    run = run_label(file=file, schema=schema, out=out, text_column=text_column,
                    id_column=id_column, fmt=fmt, top_k=top_k, cutoff=cutoff,
                    accept_threshold=accept_threshold, strategy=strategy, limit=limit,
                    batch_size=batch_size, progress=not quiet)
    click.echo(run.summary(), err=True)
    click.echo(f"written to {out}", err=True)
