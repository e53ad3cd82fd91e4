"""Commands that use a running server through its API (RAC_URL + RAC_API_KEY, or --url and
--api-key): upload datasets, start and watch jobs, export, list schemas, jobs and datasets.

They need nothing but the server: no database, no models, no RAC_DATA_DIR. Errors (server down,
refused key, bad input) are one `error: ...` line with exit status 2; `rac jobs watch` exits 1
when the job fails or is cancelled.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from app.cli.client import Server, server_from, server_options

STRATEGIES = ("cascade", "sequential", "window", "retrieval")
EXPORT_FORMATS = ("jsonl", "csv", "parquet", "label-studio")
FINAL = ("succeeded", "failed", "cancelled")


def _table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                     for r in cells)


# --- datasets ------------------------------------------------------------------------------------

@click.group()
def datasets() -> None:
    """Datasets on the server (RAC_URL)."""


@datasets.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--text-column", default="text", show_default=True,
              help="the column holding the text to label")
@click.option("--id-column", default=None,
              help="the column holding item ids (default: a column named `id` if there is "
                   "one, else ids derived from the text)")
@server_options
def datasets_upload(file: Path, text_column: str, id_column: str | None, url: str,
                    api_key: str | None) -> None:
    """Upload FILE (CSV, JSONL or Parquet) as a dataset; prints its id as the last line."""
    data = {"text_column": text_column, **({"id_column": id_column} if id_column else {})}
    with file.open("rb") as handle:
        out = server_from(url, api_key).post("/v1/datasets", data=data, timeout=None,
                                             files={"file": (file.name, handle)})
    click.echo(f"uploaded {file.name}: {out['items']} items ({out['created']} new), "
               f"{out['bad_rows']} bad rows", err=True)
    for error in out.get("errors", [])[:5]:
        click.echo(f"  row {error.get('row')}: {error.get('error')}", err=True)
    click.echo(out["id"])


@datasets.command("list")
@server_options
def datasets_list(url: str, api_key: str | None) -> None:
    """The project's datasets, newest first."""
    page = server_from(url, api_key).get("/v1/datasets", params={"limit": 100})
    click.echo(_table([[d["id"], d["filename"], d["items"], d["bad_rows"], d["created_at"]]
                       for d in page["items"]],
                      ["id", "file", "items", "bad_rows", "created_at"]))


# --- jobs ----------------------------------------------------------------------------------------

@click.group()
def jobs() -> None:
    """Labelling jobs on the server (RAC_URL)."""


def _progress_line(job: dict[str, Any]) -> str:
    rate = job.get("items_per_second")
    eta = job.get("eta_seconds")
    rate_text = f"{rate:.1f} items/s" if rate else "-- items/s"
    eta_text = f"ETA {time.strftime('%H:%M:%S', time.gmtime(eta))}" if eta is not None \
        else "ETA --"
    return f"{rate_text}, {eta_text}"


def watch_job(server: Server, job_id: str, interval: float, quiet: bool) -> dict[str, Any]:
    """Follow the job until it ends, with a progress bar (done/total, items/s and ETA as the
    server computes them); returns the final job."""
    from tqdm import tqdm

    job = server.get(f"/v1/jobs/{job_id}")
    bar = tqdm(total=job["total"], unit="item", desc=job_id, disable=quiet, file=sys.stderr,
               dynamic_ncols=True,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{postfix}]")
    try:
        while True:
            bar.total = job["total"]
            bar.n = job["done"]
            bar.set_postfix_str(f"{job['state']}, {_progress_line(job)}")
            if job["state"] in FINAL:
                return job
            time.sleep(interval)
            job = server.get(f"/v1/jobs/{job_id}")
    finally:
        bar.close()


def _report(job: dict[str, Any]) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in job["counts"].items())
    click.echo(f"job {job['id']} {job['state']}: {job['done']}/{job['total']} items ({counts})",
               err=True)
    if job.get("error"):
        click.echo(f"  {job['error']}", err=True)
    if job["state"] != "succeeded":
        sys.exit(1)


@jobs.command("start")
@click.option("--schema", "schema_name", required=True,
              help="label schema NAME on the server (push it first)")
@click.option("--dataset", default=None, help="dataset id (from `rac datasets upload`)")
@click.option("--all-items", is_flag=True, help="every item of the project instead of a dataset")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=None,
              help="default: the server's (cascade)")
@click.option("--target-precision", type=click.FloatRange(0.5, 0.999), default=None)
@click.option("--cutoff", type=click.FloatRange(0, 1), default=None)
@click.option("--include-reviewed", is_flag=True, help="label reviewed items again too")
@click.option("--watch", "follow", is_flag=True, help="follow it with a progress bar")
@click.option("--interval", type=click.FloatRange(0.1), default=1.0, show_default=True,
              help="seconds between progress polls (with --watch)")
@server_options
def jobs_start(schema_name: str, dataset: str | None, all_items: bool, strategy: str | None,
               target_precision: float | None, cutoff: float | None, include_reviewed: bool,
               follow: bool, interval: float, url: str, api_key: str | None) -> None:
    """Start a job labelling a dataset (or --all-items); prints its id as the last line."""
    if (dataset is None) == (not all_items):
        raise click.UsageError("give --dataset ID or --all-items (one of them)")
    body: dict[str, Any] = {"schema": schema_name, "include_reviewed": include_reviewed}
    if dataset:
        body["dataset"] = dataset
    else:
        body["items"] = {}
    for key, value in (("strategy", strategy), ("target_precision", target_precision),
                       ("cutoff", cutoff)):
        if value is not None:
            body[key] = value
    server = server_from(url, api_key)
    job = server.post("/v1/jobs", json=body)
    click.echo(f"started job {job['id']}: {job['total']} items, schema {job['schema']} "
               f"v{job['schema_version']}", err=True)
    click.echo(job["id"])
    if follow:
        _report(watch_job(server, job["id"], interval, quiet=False))


@jobs.command("watch")
@click.argument("job_id")
@click.option("--interval", type=click.FloatRange(0.1), default=1.0, show_default=True,
              help="seconds between progress polls")
@click.option("--quiet", is_flag=True, help="no progress bar, only the final line")
@server_options
def jobs_watch(job_id: str, interval: float, quiet: bool, url: str, api_key: str | None) -> None:
    """Follow job JOB_ID to its end with a progress bar (total, items/s, ETA). Exit status 0
    when it succeeds, 1 when it fails or is cancelled."""
    _report(watch_job(server_from(url, api_key), job_id, interval, quiet))


@jobs.command("list")
@server_options
def jobs_list(url: str, api_key: str | None) -> None:
    """The project's jobs, newest first."""
    listed = server_from(url, api_key).get("/v1/jobs")
    click.echo(_table([[j["id"], j["state"], j["schema"], f"{j['done']}/{j['total']}",
                        j["selection"].get("dataset", ""), j["created_at"]] for j in listed],
                      ["id", "state", "schema", "done", "dataset", "created_at"]))


@jobs.command("cancel")
@click.argument("job_id")
@server_options
def jobs_cancel(job_id: str, url: str, api_key: str | None) -> None:
    """Cancel job JOB_ID (a running chunk stops at its next commit)."""
    job = server_from(url, api_key).post(f"/v1/jobs/{job_id}/cancel")
    click.echo(f"job {job['id']} {job['state']}")


# --- exports and schemas -------------------------------------------------------------------------

@click.command("export")
@click.option("--schema", "schema_name", default=None,
              help="label schema NAME on the server (optional with --job)")
@click.option("--job", default=None, help="only this job's items, with the labels it decided")
@click.option("--decision", type=click.Choice(["job", "latest"]), default=None,
              help="with --job: the job's labels (default) or the items' current labels")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="jsonl",
              show_default=True)
@click.option("--status", default=None, help="only these statuses, comma-separated")
@click.option("--dataset", default=None, help="only items of this dataset")
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="file to write (default: standard output)")
@server_options
def export_command(schema_name: str | None, job: str | None, decision: str | None, fmt: str,
                   status: str | None, dataset: str | None, out: Path | None, url: str,
                   api_key: str | None) -> None:
    """Download an export of the labels from the server."""
    if schema_name is None and job is None:
        raise click.UsageError("give --schema NAME or --job ID")
    params = {k: v for k, v in (("schema", schema_name), ("job", job), ("decision", decision),
                                ("format", fmt), ("status", status), ("dataset", dataset))
              if v is not None}
    server = server_from(url, api_key)
    if out is None:
        written, headers = server.download("/v1/exports", params, sys.stdout.buffer)
        sys.stdout.flush()
    else:
        partial = out.with_name(out.name + ".part")
        with partial.open("wb") as handle:
            try:
                written, headers = server.download("/v1/exports", params, handle)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        partial.replace(out)  # a failed download leaves no half file behind
    click.echo(f"exported {written} bytes ({fmt}; decision: "
               f"{headers.get('x-export-decision', 'latest')})"
               + (f" to {out}" if out else ""), err=True)


@click.command("list")
@server_options
def schemas_list(url: str, api_key: str | None) -> None:
    """The label schemas on the server (RAC_URL), latest versions."""
    listed = server_from(url, api_key).get("/v1/schemas")
    click.echo(_table([[s["name"], s["version"], s["label_count"],
                        "yes" if s.get("multi_label") else "no"] for s in listed["items"]],
                      ["name", "version", "labels", "multi_label"]))
