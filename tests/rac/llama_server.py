"""A real llama.cpp OpenAI-compatible server (`python -m llama_cpp.server`) with the bundled GGUF,
for tests of the HTTP judge: it can be killed and restarted on the same port mid-test.

Run as a script to re-record the JSON responses the parsing tests use:

    python -m tests.rac.llama_server record
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from app.rac.bundled import judge_gguf_path

HOST = "127.0.0.1"  # loopback only: the test server must not be reachable from elsewhere
MODEL_ALIAS = "smollm2-135m-instruct"  # the id /v1/models reports (instead of a file path)
DATA_DIR = Path(__file__).parent / "data"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """One `llama_cpp.server` subprocess on a fixed loopback port.

    `logits_all` must be on (it is the server's default, passed explicitly because the judge
    depends on it): without it llama.cpp cannot return logprobs.
    """

    def __init__(self, model_path: Path | None = None, *, port: int | None = None,
                 n_ctx: int = 2048, api_key: str | None = None,
                 startup_timeout: float = 60.0) -> None:
        self.model_path = Path(model_path) if model_path else judge_gguf_path()
        self.port = port or free_port()
        self.n_ctx = n_ctx
        self.api_key = api_key
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "llama_cpp.server",
               "--model", str(self.model_path), "--model_alias", MODEL_ALIAS,
               "--host", HOST, "--port", str(self.port),
               "--n_ctx", str(self.n_ctx), "--logits_all", "True", "--verbose", "False"]
        if self.api_key:
            cmd += ["--api_key", self.api_key]
        return cmd

    def start(self) -> LlamaServer:
        if self.running:
            return self
        with self.log_path.open("ab") as log:
            # A session of its own: a signal aimed at the test run does not reach the server
            # first, and the server is only ever stopped through this object (by its pid).
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/models", headers=self.headers,
                             timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer within {self.startup_timeout:.0f} s:"
                           f"\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, *, kill: bool = True, timeout: float = 10.0) -> None:
        """Kill (default: an abrupt crash, connections reset) or terminate, then reap."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> LlamaServer:
        self.stop()
        return self.start()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def close(self) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- recording ---------------------------------------------------------------------------------

def record(data_dir: Path = DATA_DIR) -> list[Path]:
    """Record real responses of the live server for the judge's parsing tests."""
    from app.rac.judges.openai_http import chat_request
    from tests.rac.test_openai_judge import RECORDED_QUESTIONS

    data_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(name: str, status: int, body: Any, request: Any = None) -> None:
        path = data_dir / f"{name}.json"
        entry = {"request": request, "status": status, "body": body}
        path.write_text(json.dumps(entry, indent=2, ensure_ascii=False) + "\n")
        written.append(path)

    with LlamaServer() as server, httpx.Client(base_url=server.base_url + "/",
                                               timeout=60.0) as client:
        r = client.get("models")
        save("models", r.status_code, r.json())
        for name, question in RECORDED_QUESTIONS.items():
            payload = chat_request(MODEL_ALIAS, question)
            r = client.post("chat/completions", json=payload)
            save(name, r.status_code, r.json(), payload)
        # Not a judge question: an open request whose top tokens hold no yes/no word at all.
        payload = {**chat_request(MODEL_ALIAS, next(iter(RECORDED_QUESTIONS.values()))),
                   "messages": [{"role": "user", "content": "Write a short poem about the sea."}]}
        r = client.post("chat/completions", json=payload)
        save("chat_open_question", r.status_code, r.json(), payload)
        # A request the server rejects: longer than the context.
        payload = {**payload, "messages": [{"role": "user", "content": "word " * 3000}]}
        r = client.post("chat/completions", json=payload)
        payload["messages"][0]["content"] = "<'word ' x 3000>"  # keep the file small
        save("error_context_length", r.status_code, r.json(), payload)
    return written


if __name__ == "__main__":
    if sys.argv[1:] != ["record"]:
        sys.exit("usage: python -m tests.rac.llama_server record")
    for written in record():
        print(written)
