"""The CLI's connection to a running server (RAC_URL + RAC_API_KEY, or --url/--api-key).

Every way a request can fail becomes one line, `error: ...`, exit status 2 (the group's
`CommandFailed`), never a traceback: the server down or unreachable, a refused key (401/403),
and any other error answer, with the `detail` the API put in its JSON error body.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
import httpx

from app.cli.group import CommandFailed

DEFAULT_URL = "http://127.0.0.1:8000"


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])
    return str(body)[:300]


@dataclass
class Server:
    url: str
    api_key: str | None
    timeout: float = 60.0

    def _client(self, timeout: float | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.Client(base_url=self.url, headers=headers,
                            timeout=self.timeout if timeout is None else timeout)

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        if response.status_code == 401:
            hint = "" if self.api_key else " (no key given: set RAC_API_KEY or --api-key)"
            raise CommandFailed(f"the server at {self.url} refused the API key (401): "
                                f"{_detail(response)}{hint}")
        raise CommandFailed(f"{response.status_code} from {response.request.method} "
                            f"{response.request.url.path}: {_detail(response)}")

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError as exc:
            raise CommandFailed(f"cannot reach the server at {self.url} ({exc}); is "
                                "`rac serve` running there? (set RAC_URL or --url)") from None
        except httpx.TimeoutException:
            raise CommandFailed(f"the server at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise CommandFailed(f"talking to the server at {self.url} failed: {exc}") from None

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        timeout = kwargs.pop("timeout", None)
        with self._reaching(), self._client(timeout) as client:
            return self._check(client.request(method, path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs).json()

    def download(self, path: str, params: dict[str, Any], out: Any) -> tuple[int, dict]:
        """Stream the answer into the binary file `out`; (bytes written, response headers)."""
        written = 0
        with self._reaching(), self._client(timeout=None) as client, \
                client.stream("GET", path, params=params) as response:
            if not response.is_success:
                response.read()
                self._check(response)
            for chunk in response.iter_bytes():
                out.write(chunk)
                written += len(chunk)
            return written, dict(response.headers)


def server_options(command: Any) -> Any:
    """--url and --api-key (from RAC_URL / RAC_API_KEY), passed on as `server`."""
    command = click.option("--api-key", envvar="RAC_API_KEY", default=None,
                           help="API key (env RAC_API_KEY).")(command)
    command = click.option("--url", envvar="RAC_URL", default=DEFAULT_URL, show_default=True,
                           help="the running server (env RAC_URL).")(command)
    return command


def server_from(url: str, api_key: str | None) -> Server:
    return Server(url.rstrip("/"), api_key)
