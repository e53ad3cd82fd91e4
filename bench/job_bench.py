"""Batch-job throughput on the embedded default: how much of a job's wall time is the judge?

Runs the real service in this process (SQLite in a fresh directory, bundled models, the in-process
job worker), posts N items of a labelled CSV through the API, runs one job over them and reports:
items per second, judge calls per item, and the share of the job's wall time spent inside the
judge. Everything else (database, embedding, search, bookkeeping) is overhead to drive to zero.

    python -m bench.job_bench --schema schemas/banking77.yaml --data test.csv --items 2000

`--then-single N` then classifies N other rows one request each, with the defaults: before any
review their cutoff is read from the schema's labelled items (the job's), and the report gives
their share accepted and its measured precision.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from app.auth.models import Role
from app.auth.service import create_key
from app.config import Settings
from app.main import create_app
from bench.common import load_rows

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategy", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "job.json")
    parser.add_argument("--no-wait-prior", action="store_true",
                        help="start the job at once, while the schema's prior is still fitted")
    parser.add_argument("--then-single", type=int, default=0, metavar="N",
                        help="after the job, classify N other rows one request each (the "
                             "defaults): their cutoff is read from the job's labelled items")
    args = parser.parse_args()

    rows = load_rows(args.data)
    shuffled = random.Random(args.seed).sample(rows, min(args.items + args.then_single,
                                                         len(rows)))
    sample, singles = shuffled[:args.items], shuffled[args.items:]
    schema_name = yaml.safe_load(args.schema.read_text())["name"]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/bench.db")
        app = create_app(settings)
        with TestClient(app) as client:
            with app.state.session_factory() as session:
                _, key = create_key(session, "bench", Role.admin)
                session.commit()
            headers = {"Authorization": f"Bearer {key}"}
            client.post("/v1/schemas", content=args.schema.read_bytes(),
                        headers={**headers, "Content-Type": "application/yaml"})
            items = [{"id": f"b{i}", "text": text} for i, (text, _) in enumerate(sample)]
            assert client.post("/v1/items", json={"items": items}, headers=headers).is_success
            # Build the label index before timing: it is a one-off per schema version.
            client.post("/v1/classify", json={"schema": schema_name, "text": "warm up",
                                              "strategy": "retrieval"}, headers=headers)
            judge = app.state.runtime.judge
            prior_wait = time.perf_counter()
            if not args.no_wait_prior:  # the prior the service fits after a push (in the
                # background): waited for, so the job is decided by it and its judge questions
                # are not counted as the job's
                while not _prior_stored(app):
                    time.sleep(1)
            prior_seconds = time.perf_counter() - prior_wait
            prior_calls = judge.stats.calls
            judge_seconds_before, calls_before = judge.stats.seconds, judge.stats.calls
            body = {"schema": schema_name, "items": {}}
            if args.strategy:
                body["strategy"] = args.strategy
            job = client.post("/v1/jobs", json=body, headers=headers).json()
            started = time.perf_counter()
            while True:
                state = client.get(f"/v1/jobs/{job['id']}", headers=headers).json()
                if state["state"] in {"succeeded", "failed", "cancelled"}:
                    break
                print(f"\r{state['done']}/{state['total']} items", end="", flush=True)
                time.sleep(2)
            wall = time.perf_counter() - started
            judge_seconds = judge.stats.seconds - judge_seconds_before
            calls = judge.stats.calls - calls_before
            exported = client.get("/v1/exports", params={"schema": schema_name,
                                                         "format": "jsonl"}, headers=headers)
            decided = [json.loads(line) for line in exported.text.splitlines() if line]
            single = _single_decisions(client, headers, schema_name, singles) \
                if singles else None
    gold = {f"b{i}": label for i, (_, label) in enumerate(sample)}
    accepted = [d for d in decided if d.get("status") == "accepted"]
    right = sum(d.get("label") == gold.get(d.get("id")) for d in accepted)
    job_wall = state["done"] / state["items_per_second"] if state["items_per_second"] else wall
    report = {
        "items": state["done"], "state": state["state"], "params": state["params"],
        "prior_wait_seconds": None if args.no_wait_prior else round(prior_seconds, 2),
        "prior_judge_questions": None if args.no_wait_prior else prior_calls,
        "job_wall_seconds": round(job_wall, 2),
        "items_per_second": round(state["items_per_second"] or 0.0, 3),
        "judge_calls": calls, "judge_calls_per_item": round(calls / max(1, state["done"]), 3),
        "judge_seconds": round(judge_seconds, 2),
        "judge_share_of_wall": round(judge_seconds / job_wall, 4) if job_wall else None,
        "judge_calls_per_second": round(calls / judge_seconds, 3) if judge_seconds else None,
        "counts": state["counts"],
        "accepted_share": round(len(accepted) / max(1, len(sample)), 4),
        "accepted_precision": round(right / len(accepted), 4) if accepted else None,
        "accuracy": round(sum(d.get("label") == gold.get(d.get("id")) for d in decided)
                          / max(1, len(sample)), 4),
        "then_single": single,
    }
    print()
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


def _single_decisions(client, headers, schema_name, rows):  # type: ignore[no-untyped-def]
    """Each row classified by one request with the defaults, once the service's cached items
    reference (read while the job ran, with too few items labelled) has expired."""
    from app.labelling.service import FEW_ITEMS_SECONDS

    time.sleep(FEW_ITEMS_SECONDS + 1)
    page = client.get(f"/v1/schemas/{schema_name}", headers=headers).json()
    answers = []
    for text, gold in rows:
        r = client.post("/v1/classify", json={"schema": schema_name, "text": text},
                        headers=headers)
        assert r.status_code == 200, r.text
        answers.append((r.json(), gold))
    accepted = [(a, g) for a, g in answers if a["status"] == "accepted"]
    return {"items": len(rows), "schema_page_cutoff": page.get("cutoff"),
            "cutoffs": sorted({a["cutoff"] for a, _ in answers}),
            "accepted_share": round(len(accepted) / len(rows), 4),
            "accepted_precision": round(sum(a["label"] == g for a, g in accepted)
                                        / len(accepted), 4) if accepted else None,
            "accuracy": round(sum(a["label"] == g for a, g in answers) / len(rows), 4)}


def _prior_stored(app) -> bool:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from app.calibration.models import SchemaPrior

    with app.state.session_factory() as session:
        return bool(session.scalar(select(func.count()).select_from(SchemaPrior)))


if __name__ == "__main__":
    main()
