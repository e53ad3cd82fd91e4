"""`rac serve` on the embedded default (SQLite in a fresh directory, or a given database; bundled
models) on a free loopback port, with an admin key: what the service benchmarks measure from
another process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def rac_server(project: str = "bench", start_seconds: float = 180,
               database_url: str | None = None) -> Iterator[tuple[str, str]]:
    """Yields (base URL, admin key); stops the server on exit. Without `database_url`, SQLite
    in the fresh directory; with it, that (empty) database, migrated at start."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RAC_DATA_DIR": tmp,
               "RAC_DATABASE_URL": database_url or f"sqlite:///{tmp}/rac.db",
               "RAC_DB_AUTO_UPGRADE": "true"}
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + start_seconds
            while True:
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.5)
            key = subprocess.run([sys.executable, "-m", "app.cli", "keys", "create", "--project",
                                  project, "--role", "admin"], env=env, capture_output=True,
                                 text=True, check=True).stdout.strip().splitlines()[-1]
            yield base, key
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:  # still starting on a loaded machine
                server.kill()
                server.wait(timeout=30)
