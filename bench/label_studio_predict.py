"""Predictions per second through the Label Studio ML backend's POST /predict.

Starts `rac serve` (embedded default) from a separate process, pushes the schema, takes its
labeling config from GET /v1/exports/label-studio-config, connects as Label Studio does
(POST /setup) and sends one /predict request of N tasks (Label Studio's batch) per strategy,
after a one-task warm-up that builds the label index. Reports tasks/s and, since the tasks come
from a labelled file, the accuracy of the predicted choice. Printed, and written as JSON.

    python -m bench.label_studio_predict --schema schemas/banking77.yaml \\
        --data "$BANKING77/test.csv" --n 100 --strategies retrieval,sequential
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import time
from pathlib import Path

import httpx
import yaml

from bench.common import load_rows
from bench.server import rac_server

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="a labelled CSV (text, category)")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategies", default="retrieval,sequential")
    parser.add_argument("--out", type=Path, default=RESULTS / "label_studio_predict.json")
    args = parser.parse_args()

    rows = random.Random(args.seed).sample(load_rows(args.data), args.n)
    name = yaml.safe_load(args.schema.read_text())["name"]
    report: dict = {"tasks_per_request": args.n, "schema": name, "data": args.data.name,
                    "cpus": os.cpu_count(), "load_average_before": os.getloadavg()[0],
                    "strategies": {}}
    with rac_server() as (base, key):
        basic = base64.b64encode(f"label-studio:{key}".encode()).decode()
        with httpx.Client(base_url=base, timeout=3600,
                          headers={"Authorization": f"Bearer {key}"}) as client:
            client.post("/v1/schemas", content=args.schema.read_bytes(),
                        headers={"Content-Type": "application/yaml"}).raise_for_status()
            config = client.get("/v1/exports/label-studio-config",
                                params={"schema": name}).text
            backend = {"Authorization": f"Basic {basic}"}
            for number, strategy in enumerate(args.strategies.split(",")):
                url = f"/label-studio/{name}/strategy/{strategy}"
                client.post(f"{url}/setup", headers=backend,
                            json={"project": "1.1700000000", "schema": config}
                            ).raise_for_status()
                offset = (number + 1) * 100_000  # new task ids: every strategy labels afresh

                def predict(tasks: list[dict], url: str = url) -> list[dict]:
                    r = client.post(f"{url}/predict", headers=backend, json={
                        "tasks": tasks, "project": "1.1700000000", "label_config": config,
                        "params": {}})
                    r.raise_for_status()
                    return list(r.json()["results"])

                predict([{"id": offset, "data": {"text": "warm up: builds the label index"}}])
                tasks = [{"id": offset + 1 + i, "data": {"text": text}}
                         for i, (text, _) in enumerate(rows)]
                started = time.perf_counter()
                results = predict(tasks)
                seconds = time.perf_counter() - started
                chosen = [r["result"][0]["value"]["choices"][0] if r["result"] else None
                          for r in results]
                report["strategies"][strategy] = {
                    "seconds": round(seconds, 2),
                    "predictions_per_second": round(len(results) / seconds, 2),
                    "accuracy": round(sum(c == label for c, (_, label)
                                          in zip(chosen, rows, strict=True)) / len(rows), 3),
                    "model_version": results[0]["model_version"],
                }
                print(strategy, json.dumps(report["strategies"][strategy]), flush=True)
    report["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
