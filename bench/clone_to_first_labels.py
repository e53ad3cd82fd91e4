"""Time from `git clone` to the first labelled dataset, following only the README.

Steps, each timed: `git clone REPO`; `make run` (virtualenv, `pip install .`, start the server;
waited for until /healthz answers); then the README's commands: `rac keys create`, the schema
pushed (`POST /v1/schemas` with schemas/demo.yaml), `rac datasets upload` of the README's
two-row tickets file plus `--rows` more rows, `rac jobs start`, `rac jobs watch`, `rac export
--format parquet`. Prints the step times and writes them as JSON.

What pip already has in its cache (wheels it built before, such as llama-cpp-python's, and
downloads) makes `make run` much faster than on a machine seen for the first time: say which
it was when quoting the number.

    python bench/clone_to_first_labels.py --repo /path/to/checkout --workdir /tmp/clone \\
        --out bench/results/clone_to_first_labels.json [--make-arg TORCH_INDEX=]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

TEXTS = ["My card has not arrived", "How do I reset my password?", "I was charged twice",
         "The app crashes when I open settings", "Please cancel my subscription",
         "Can you add a dark mode?"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", required=True, help="what to clone (URL or path)")
    ap.add_argument("--branch", default=None, help="branch to clone (default: the remote's)")
    ap.add_argument("--workdir", required=True, type=Path, help="emptied, then cloned into")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--rows", type=int, default=298,
                    help="rows added to the README's two (default: 300 in all)")
    ap.add_argument("--make-arg", action="append", default=[],
                    help="passed to `make run` (e.g. TORCH_INDEX= where a mirror serves torch)")
    args = ap.parse_args()

    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True)
    times: dict[str, float] = {}
    start = time.monotonic()

    def mark(step: str, since: float) -> float:
        now = time.monotonic()
        times[step] = round(now - since, 1)
        print(f"{step}: {times[step]} s (total {now - start:.1f} s)", flush=True)
        return now

    checkout = args.workdir / "rac"
    branch = ["-b", args.branch] if args.branch else []
    subprocess.run(["git", "clone", "-q", *branch, args.repo, str(checkout)], check=True)
    t = mark("git clone", start)

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAC_")}
    log = (args.workdir / "make-run.log").open("wb")
    server = subprocess.Popen(["make", "run", f"PORT={port}", *args.make_arg], cwd=checkout,
                              env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"make run ended; see {args.workdir / 'make-run.log'}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        t = mark("make run (install + server up)", t)

        rac = str(checkout / ".venv" / "bin" / "rac")

        def run(*cmd: str) -> str:
            done = subprocess.run([rac, *cmd], cwd=checkout, capture_output=True, text=True,
                                  env={**env, "RAC_URL": url, "RAC_API_KEY": key})
            if done.returncode != 0:
                raise SystemExit(f"rac {' '.join(cmd)} failed: {done.stderr[-2000:]}")
            return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""

        key = ""
        key = run("keys", "create", "--project", "demo", "--role", "admin")
        r = httpx.post(f"{url}/v1/schemas", content=(checkout / "schemas/demo.yaml").read_bytes(),
                       headers={"Authorization": f"Bearer {key}",
                                "Content-Type": "application/yaml"}, timeout=120)
        r.raise_for_status()
        t = mark("key + schema", t)

        tickets = args.workdir / "tickets.csv"
        rows = ["id,text,channel", "d1,My card has not arrived,app",
                "d2,How do I reset my password?,email"]
        rows += [f"x{i},{TEXTS[i % len(TEXTS)]} (ticket {i}),app" for i in range(args.rows)]
        tickets.write_text("\n".join(rows) + "\n")
        dataset = run("datasets", "upload", str(tickets))
        job = run("jobs", "start", "--schema", "support-demo", "--dataset", dataset)
        run("jobs", "watch", job, "--quiet")
        t = mark(f"upload + job over {args.rows + 2} rows", t)
        out = args.workdir / "tickets.parquet"
        run("export", "--job", job, "--format", "parquet", "--out", str(out))
        mark("export", t)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    total = round(time.monotonic() - start, 1)
    print(f"git clone -> first labelled dataset: {total} s", flush=True)
    load = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "total_seconds": total, "steps_seconds": times, "rows": args.rows + 2,
        "make_args": args.make_arg, "load_average_at_end": [round(x, 2) for x in load],
        "cpus": os.cpu_count(), "python": platform.python_version(),
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
