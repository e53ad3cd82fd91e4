"""Upload and ingest throughput against a real server, with the server's peak memory.

Generates a CSV (default 100,000 rows), starts `rac serve` on a free loopback port with a fresh
data dir (SQLite by default; `--postgres URL` uses a throw-away schema of that database), makes an
editor key with `rac keys create`, then from this process:

1. uploads the CSV to POST /v1/datasets (rows/s),
2. uploads it again (every row matches an existing item: the idempotent path),
3. posts 10 requests of 10,000 new items each to POST /v1/items (items/s).

Memory is the server process's resident-set high-water mark (VmHWM in /proc/<pid>/status),
reset before each phase by writing 5 to /proc/<pid>/clear_refs, so each phase reports its own
peak; the baseline is the RSS after start-up (the embedding model and the LLM are loaded then).

    python bench/upload_bench.py                      # writes bench/results/upload.json
    python bench/upload_bench.py --rows 20000 --postgres postgresql+psycopg://u@127.0.0.1/db
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "upload.json"
_VOCABULARY = ("invoice refund card charged twice password reset login crash export report dark "
               "mode subscription cancel account delete order parcel late missing broken screen "
               "slow sync please help urgent again yesterday since update price plan upgrade team "
               "invite")
WORDS = _VOCABULARY.split(" ")


def generate_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("id,text,channel,priority\n")
        for i in range(rows):
            text = " ".join(rng.choices(WORDS, k=rng.randint(6, 18)))
            f.write(f'row-{i},"Message {i}: {text}",{rng.choice(("email", "chat", "phone"))},'
                    f"{rng.randint(1, 5)}\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def reset_peak(pid: int) -> bool:
    """Start a new high-water mark (Linux >= 4.0); False if the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    from sqlalchemy import text

    from app.db import make_engine

    schema = f"rac_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def rac(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=True)
    return done.stdout


@contextmanager
def server(env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with code {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start within 300 s")
            time.sleep(0.5)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def phase(pid: int, run: Any) -> dict[str, Any]:
    """Run one measured phase: wall time and the server's peak RSS during it."""
    before = memory_kb(pid)
    reset = reset_peak(pid)
    started = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - started
    after = memory_kb(pid)
    return {**out, "seconds": round(seconds, 2), "rss_before_mb": round(before["VmRSS"] / 1024),
            "peak_rss_mb": round(after["VmHWM"] / 1024),
            "peak_rss_increase_mb": round((after["VmHWM"] - before["VmRSS"]) / 1024),
            "peak_is_since_start": not reset}


def upload(base: str, headers: dict[str, str], path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        r = httpx.post(f"{base}/v1/datasets", headers=headers, timeout=1800,
                       files={"file": (path.name, f, "text/csv")},
                       data={"text_column": "text", "id_column": "id"})
    r.raise_for_status()
    body = r.json()
    return {k: body[k] for k in ("rows", "items", "created", "bad_rows")}


def ingest(base: str, headers: dict[str, str], requests: int, per_request: int
           ) -> dict[str, Any]:
    rng = random.Random(1)
    created = 0
    with httpx.Client(timeout=600, headers=headers) as client:
        for r_no in range(requests):
            items = [{"id": f"api-{r_no}-{i}",
                      "text": " ".join(rng.choices(WORDS, k=rng.randint(6, 18))),
                      "metadata": {"batch": r_no}} for i in range(per_request)]
            r = client.post(f"{base}/v1/items", json={"items": items})
            r.raise_for_status()
            created += r.json()["created"]
    return {"requests": requests, "items": requests * per_request, "created": created}


def bench(rows: int, database_url: str | None, label: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rac-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        csv_path = Path(tmp) / "bench.csv"
        generate_csv(csv_path, rows)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAC_")}
        env.update(RAC_DATA_DIR=str(data_dir), RAC_DB_AUTO_UPGRADE="true")
        if database_url:
            env["RAC_DATABASE_URL"] = database_url
        rac(["db", "upgrade"], env)
        key = rac(["keys", "create", "--project", "bench", "--role", "editor"],
                  env).strip().splitlines()[-1]
        headers = {"Authorization": f"Bearer {key}"}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with server(env, port) as proc:
            started = memory_kb(proc.pid)
            first = phase(proc.pid, lambda: upload(base, headers, csv_path))
            again = phase(proc.pid, lambda: upload(base, headers, csv_path))
            posted = phase(proc.pid, lambda: ingest(base, headers, 10, 10_000))
        for result in (first, again):
            result["rows_per_second"] = round(result["rows"] / result["seconds"])
        posted["items_per_second"] = round(posted["items"] / posted["seconds"])
        return {"database": label, "file_mb": round(csv_path.stat().st_size / 2**20, 1),
                "server_rss_after_start_mb": round(started["VmRSS"] / 1024),
                "upload": first, "reupload": again, "items_post": posted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", default=None,
                        help="also run against this PostgreSQL database (a temporary schema)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    runs = [bench(args.rows, None, "sqlite")]
    if args.postgres:
        with postgres_schema(args.postgres) as url:
            runs.append(bench(args.rows, url, "postgresql"))
    report = {"rows": args.rows, "machine": {"cpu_count": os.cpu_count(),
                                             "platform": platform.platform(),
                                             "python": platform.python_version()},
              "runs": runs}
    for run in runs:
        up, again, posted = run["upload"], run["reupload"], run["items_post"]
        print(f"[{run['database']}] upload of {args.rows} rows ({run['file_mb']} MB): "
              f"{up['seconds']} s, {up['rows_per_second']} rows/s, server peak RSS "
              f"{up['peak_rss_mb']} MB (+{up['peak_rss_increase_mb']} MB over "
              f"{up['rss_before_mb']} MB)")
        print(f"[{run['database']}] re-upload (all rows exist): {again['rows_per_second']} "
              f"rows/s, peak RSS {again['peak_rss_mb']} MB")
        print(f"[{run['database']}] POST /v1/items, {posted['requests']} x 10,000 items: "
              f"{posted['seconds']} s, {posted['items_per_second']} items/s, peak RSS "
              f"{posted['peak_rss_mb']} MB (+{posted['peak_rss_increase_mb']} MB)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
