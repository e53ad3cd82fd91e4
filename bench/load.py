"""Mixed load on a live server: N clients for S seconds of reads, writes and retrieval classify.

Starts `rac serve` in a separate process on a free loopback port (SQLite in a fresh directory,
and with --postgres a fresh schema of that PostgreSQL database too), pushes the schema, stores
--items items from --data, then runs --clients threads, each with its own connection, drawing
operations at random (fixed seed per client):

    classify   40%  POST /v1/classify, a text, strategy retrieval (what the p95 target is about)
    read       30%  GET /v1/items (a page of 50), GET /v1/items/{id}, GET /v1/review (lease 5)
    write      30%  POST /v1/items (5 new items), or classify a stored item (the decision is
                    stored) and POST its review

An error is any answer other than 2xx, or no answer. Prints requests/s, p50/p95 per operation
and the error count with the load average; writes JSON.

    python -m bench.load --schema schemas/banking77.yaml --data test.csv \
        --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import create_engine, text

from bench.common import load_rows
from bench.server import rac_server

RESULTS = Path(__file__).parent / "results"
MIX = (("classify", 0.4), ("read", 0.3), ("write", 0.3))


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.samples: list[str] = []

    def record(self, op: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.latencies.setdefault(op, []).append(seconds)
            if error is not None:
                self.errors[op] = self.errors.get(op, 0) + 1
                if len(self.samples) < 10:
                    self.samples.append(f"{op}: {error}")


class LoadClient:
    def __init__(self, base: str, key: str, schema: str, labels: list[str], texts: list[str],
                 item_ids: list[str], seed: int, recorder: Recorder) -> None:
        self.http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                                 timeout=60)
        self.schema, self.labels, self.texts = schema, labels, texts
        self.item_ids = item_ids
        self.rng = random.Random(seed)
        self.seed = seed
        self.recorder = recorder
        self.own_items: list[str] = []

    def call(self, op: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.recorder.record(op, time.perf_counter() - started, f"{type(exc).__name__}")
            return None
        error = None if response.is_success else f"{response.status_code} {response.text[:200]}"
        self.recorder.record(op, time.perf_counter() - started, error)
        return response if response.is_success else None

    def step(self) -> None:
        kind = self.rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        if kind == "classify":
            self.call("classify", "POST", "/v1/classify",
                      json={"schema": self.schema, "text": self.rng.choice(self.texts),
                            "strategy": "retrieval"})
        elif kind == "read":
            which = self.rng.random()
            if which < 0.4:
                self.call("list_items", "GET", "/v1/items", params={"limit": 50})
            elif which < 0.8:
                self.call("get_item", "GET", f"/v1/items/{self.rng.choice(self.item_ids)}")
            else:
                leased = self.call("review_queue", "GET", "/v1/review",
                                   params={"schema": self.schema, "limit": 5})
                for item in (leased.json()["items"] if leased is not None else []):
                    self.call("release", "POST", f"/v1/items/{item['id']}/release",
                              params={"schema": self.schema})
        elif self.rng.random() < 0.5:
            batch = [{"id": f"load-{self.seed}-{uuid.uuid4().hex[:12]}",
                      "text": self.rng.choice(self.texts) + f" ({uuid.uuid4().hex[:6]})"}
                     for _ in range(5)]
            if self.call("post_items", "POST", "/v1/items", json={"items": batch}):
                self.own_items.extend(item["id"] for item in batch)
        elif self.own_items:
            item = self.own_items.pop()
            if self.call("classify_item", "POST", "/v1/classify",
                         json={"schema": self.schema, "item_id": item,
                               "strategy": "retrieval"}):
                self.call("review", "POST", f"/v1/items/{item}/review",
                          json={"schema": self.schema, "label": self.rng.choice(self.labels)})

    def run(self, until: float) -> None:
        with self.http:
            while time.monotonic() < until:
                self.step()


def wait_for_prior(client: httpx.Client, schema: str, timeout: float = 1800) -> float:
    """Seconds until the schema shows a cutoff (its prior is stored)."""
    started = time.monotonic()
    while client.get(f"/v1/schemas/{schema}").json().get("cutoff") is None:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"the prior of {schema} was not fitted within {timeout:.0f} s")
        time.sleep(2)
    return time.monotonic() - started


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_load(base: str, key: str, schema_file: Path, texts: list[str], args: argparse.Namespace,
             database: str) -> dict[str, Any]:
    doc = yaml.safe_load(schema_file.read_text())
    name, labels = doc["name"], [label["name"] for label in doc["labels"]]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                      timeout=300) as client:
        client.post("/v1/schemas", content=schema_file.read_bytes(),
                    headers={"Content-Type": "application/yaml"}).raise_for_status()
        item_ids = [f"seed-{i}" for i in range(args.items)]
        for start in range(0, args.items, 500):
            client.post("/v1/items", json={"items": [
                {"id": item_ids[i], "text": texts[i % len(texts)]}
                for i in range(start, min(start + 500, args.items))]}).raise_for_status()
        # A push starts the schema's prior fit in the background (it asks the judge up to 60
        # questions, about a minute of a core): wait for it, so the load meets the steady state.
        wait_for_prior(client, name)
        # Warm up: the label index is built on the first classify.
        client.post("/v1/classify", json={"schema": name, "text": texts[0],
                                          "strategy": "retrieval"}).raise_for_status()
    recorder = Recorder()
    clients = [LoadClient(base, key, name, labels, texts, item_ids, seed, recorder)
               for seed in range(args.clients)]
    load_before = load_average()
    started = time.monotonic()
    until = started + args.seconds
    threads = [threading.Thread(target=c.run, args=(until,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    every = [s for values in recorder.latencies.values() for s in values]
    per_op = {op: {"requests": len(values), "errors": recorder.errors.get(op, 0),
                   "p50_ms": round(1000 * percentile(values, 0.5), 1),  # type: ignore[operator]
                   "p95_ms": round(1000 * percentile(values, 0.95), 1)}  # type: ignore[operator]
              for op, values in sorted(recorder.latencies.items())}
    return {
        "database": database, "clients": args.clients, "seconds": round(elapsed, 1),
        "requests": len(every), "requests_per_second": round(len(every) / elapsed, 1),
        "errors": sum(recorder.errors.values()), "error_samples": recorder.samples,
        "p50_ms": round(1000 * (percentile(every, 0.5) or 0), 1),
        "p95_ms": round(1000 * (percentile(every, 0.95) or 0), 1),
        "classify_retrieval_p95_ms": per_op.get("classify", {}).get("p95_ms"),
        "operations": per_op,
        "load_average_before": load_before, "load_average_after": load_average(),
    }


@contextmanager
def postgres_schema(url: str):  # type: ignore[no-untyped-def]
    """A fresh schema of the given database, dropped afterwards; yields its URL."""
    name = f"rac_load_{uuid.uuid4().hex[:10]}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{url}?options=-csearch_path%3D{name}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="CSV with a text column")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--items", type=int, default=2000, help="items stored before the run")
    parser.add_argument("--postgres", help="also run against a fresh schema of this database")
    parser.add_argument("--out", type=Path, default=RESULTS / "load.json")
    args = parser.parse_args()

    texts = [t for t, _ in load_rows(args.data)]
    runs: list[dict[str, Any]] = []

    def save() -> None:  # after every run: a later one may not start on a loaded machine
        report = {"cpu_count": os.cpu_count(), "mix": dict(MIX), "runs": runs}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")

    # A loaded machine (load 20 on 2 cores) takes minutes to start a server.
    with rac_server(start_seconds=900) as (base, key):
        runs.append(run_load(base, key, args.schema, texts, args, "sqlite"))
        print(json.dumps(runs[-1], indent=2), flush=True)
    save()
    if args.postgres:
        with postgres_schema(args.postgres) as url, rac_server(start_seconds=900,
                                                            database_url=url) as (base, key):
            runs.append(run_load(base, key, args.schema, texts, args, "postgresql"))
            print(json.dumps(runs[-1], indent=2), flush=True)
        save()
    for run in runs:
        print(f"{run['database']}: {run['requests_per_second']} req/s, p50 {run['p50_ms']} ms, "
              f"p95 {run['p95_ms']} ms, retrieval classify p95 "
              f"{run['classify_retrieval_p95_ms']} ms, errors {run['errors']}, load "
              f"{run['load_average_before']} -> {run['load_average_after']}")


if __name__ == "__main__":
    main()
