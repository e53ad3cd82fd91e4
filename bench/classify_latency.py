"""Latency of POST /v1/classify on the embedded default, measured from a separate process.

Starts `rac serve` (SQLite in a fresh directory, bundled models) on a free loopback port, pushes
a schema, then sends N classify requests one after another from this process and reports p50,
p95 and the mean judge calls per request. Printed, and written as JSON.

    python -m bench.classify_latency --schema schemas/banking77.yaml --data test.csv --n 100
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import httpx
import yaml

from bench.common import load_rows
from bench.server import rac_server

RESULTS = Path(__file__).parent / "results"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "classify_latency.json")
    args = parser.parse_args()

    texts = [t for t, _ in random.Random(args.seed).sample(load_rows(args.data), args.n)]
    name = yaml.safe_load(args.schema.read_text())["name"]
    with rac_server() as (base, key):
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
            client.post("/v1/schemas", content=args.schema.read_bytes(),
                        headers={"Content-Type": "application/yaml"}).raise_for_status()
            body = {"schema": name, "text": "warm up: builds the label index"}
            client.post("/v1/classify", json=body).raise_for_status()
            latencies, calls, statuses = [], [], {}
            for text in texts:
                payload = {"schema": name, "text": text}
                if args.top_k:
                    payload["top_k"] = args.top_k
                started = time.perf_counter()
                r = client.post("/v1/classify", json=payload)
                latencies.append(time.perf_counter() - started)
                r.raise_for_status()
                calls.append(r.json()["judge_calls"])
                statuses[r.json()["status"]] = statuses.get(r.json()["status"], 0) + 1
    report = {
        "requests": len(latencies), "schema": name,
        "p50_seconds": round(percentile(latencies, 0.50), 3),
        "p95_seconds": round(percentile(latencies, 0.95), 3),
        "mean_seconds": round(statistics.mean(latencies), 3),
        "judge_calls_per_request": round(statistics.mean(calls), 3),
        "statuses": statuses,
    }
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
