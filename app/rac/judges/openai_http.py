"""A judge served over HTTP by an OpenAI-compatible chat completions server (vLLM in production).

Each question is one `POST /chat/completions` asking for a single token with the top-20 logprobs of
that token; P(yes) is read from those logprobs. Many requests are kept in flight (bounded by
`max_concurrency`) so the server can batch them; vLLM's prefix cache then shares the item part of
the prompt between an item's candidate labels.

`p_yes` is called synchronously from worker threads. The judge owns one asyncio event loop in a
daemon thread with one `httpx.AsyncClient`, so the connection pool and the concurrency bound are
shared by every caller, and the pool stays warm between calls.

Transient failures (connection refused or reset, timeouts, HTTP 5xx and 429) are retried with
exponential backoff; with the defaults a request keeps trying for 73-92 s, so a server restarted
within a minute does not fail a batch job. Other 4xx answers are the request's fault and are not
retried.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from app.rac.judge import Judge, JudgeError, p_yes_from_logprobs
from app.rac.prompts import PROMPT_VERSION, Question, checked_prompt_version, messages_for

logger = logging.getLogger(__name__)

T = TypeVar("T")

TOP_LOGPROBS = 20
# When neither 'yes' nor 'no' is among the top tokens the model has no opinion we can read;
# 0.5 is the uninformative answer (it neither accepts nor rules out the label).
UNINFORMATIVE = 0.5
RETRY_STATUSES = frozenset({408, 429})  # plus every 5xx

NO_LOGPROBS_HINT = (
    "the judge needs the top-20 logprobs of the answer token; for vLLM start the server with "
    "--max-logprobs 20 (or more)"
)


class NoLogprobsError(JudgeError):
    """The server answered but without logprobs: a configuration problem, never retried."""


def chat_request(model: str, question: Question, prompt_version: str = PROMPT_VERSION
                 ) -> dict[str, Any]:
    """The body of one chat completion request: one greedy token and its top logprobs."""
    return {
        "model": model,
        "messages": messages_for(question, prompt_version),
        "max_tokens": 1,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": TOP_LOGPROBS,
    }


def p_yes_from_chat_response(body: dict[str, Any]) -> float:
    """P(yes) from a chat completion response that carries logprobs of its first token.

    The top logprobs of the first generated token are used; yes/no spellings (' yes', 'Yes', ...)
    are summed by `p_yes_from_logprobs`. If none of them is a yes/no word the answer is
    UNINFORMATIVE (0.5). A response without logprobs raises NoLogprobsError.
    """
    p = _p_yes_or_none(body)
    return UNINFORMATIVE if p is None else p


def _p_yes_or_none(body: dict[str, Any]) -> float | None:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise JudgeError(f"the judge server's response has no choices: {_excerpt(body)}")
    logprobs = choices[0].get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    top = content[0].get("top_logprobs") if isinstance(content, list) and content else None
    if not top:
        raise NoLogprobsError(f"the judge server returned no logprobs; {NO_LOGPROBS_HINT}")
    return p_yes_from_logprobs((entry.get("token", ""), entry.get("logprob")) for entry in top)


def first_model_id(body: dict[str, Any]) -> str:
    """The first model id of a `GET /models` response."""
    data = body.get("data")
    if not isinstance(data, list) or not data or not data[0].get("id"):
        raise JudgeError(f"the judge server lists no models: {_excerpt(body)}")
    return str(data[0]["id"])


def error_message(response: httpx.Response) -> str:
    """The server's own explanation of an error response (OpenAI, FastAPI or plain text)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("message", "detail", "error"):
            if body.get(key):
                return str(body[key])
    return _excerpt(body)


def _excerpt(body: Any) -> str:
    return repr(body)[:300]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: wait base*2**n (at most `cap`), shortened by up to 20%.

    The jitter spreads out the many requests that fail together when a server goes away, so they
    do not hit it in lockstep when it comes back; it only ever shortens a delay, so the total time
    spent retrying is predictable: between 80% and 100% of the sum of the capped delays.
    """

    max_retries: int = 8
    base: float = 0.5
    cap: float = 30.0
    jitter: float = 0.2

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (0-based)."""
        wait = min(self.cap, self.base * 2.0**retry) * random.uniform(1.0 - self.jitter, 1.0)
        if retry_after is not None:  # the server asked for a pause (429/503): honour it, bounded
            wait = max(wait, min(retry_after, self.cap))
        return wait

    def total(self) -> float:
        """The longest time all retries may wait: how long a server may be away."""
        return sum(min(self.cap, self.base * 2.0**n) for n in range(self.max_retries))


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class OpenAIJudge(Judge):
    """P(yes) from an OpenAI-compatible server at `base_url` (the API root, e.g. `.../v1`).

    Without `model`, the first model the server lists is used; that lookup happens here and goes
    through the same retries, so constructing the judge waits for a server that is starting.
    """

    def __init__(self, base_url: str, model: str | None = None, *, api_key: str | None = None,
                 max_concurrency: int = 16, timeout: float = 60.0, max_retries: int = 8,
                 backoff_base: float = 0.5, backoff_max: float = 30.0,
                 prompt_version: str | None = None) -> None:
        super().__init__()
        if prompt_version is not None:  # else Judge's default
            self.prompt_version = checked_prompt_version(prompt_version)
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.max_concurrency = max_concurrency
        self.retry = RetryPolicy(max_retries=max_retries, base=backoff_base, cap=backoff_max)
        # Observability, only written from the loop thread.
        self.retries = 0
        self.uninformative = 0
        self.in_flight = 0
        self.peak_in_flight = 0

        self._closed = False
        self._submit_lock = threading.Lock()  # orders submissions before close()'s cancellation
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="openai-judge")
        self._thread.start()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        try:
            self._client, self._slots = self._run(self._open(headers, timeout))
            self.model = model or first_model_id(self._run(self._request("GET", "models")))
        except BaseException:
            self.close()
            raise
        self.model_id = f"openai:{self.model}"

    async def _open(self, headers: dict[str, str], timeout: float
                    ) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        # Created inside the loop that will use them.
        limits = httpx.Limits(max_connections=self.max_concurrency,
                              max_keepalive_connections=self.max_concurrency)
        client = httpx.AsyncClient(base_url=self.base_url + "/", headers=headers, limits=limits,
                                   timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        return client, asyncio.Semaphore(self.max_concurrency)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._submit_lock:
            if self._closed:
                coro.close()
                raise JudgeError("the judge is closed")
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise JudgeError("the judge was closed while answering") from None

    def _p_yes(self, questions: list[Question]) -> list[float]:
        return self._run(self._answer_all(questions))

    async def _answer_all(self, questions: list[Question]) -> list[float]:
        try:
            async with asyncio.TaskGroup() as group:  # the first failure cancels the rest
                tasks = [group.create_task(self._answer(q)) for q in questions]
        except ExceptionGroup as failures:
            raise failures.exceptions[0] from None
        return [task.result() for task in tasks]

    async def _answer(self, question: Question) -> float:
        request = chat_request(self.model, question, self.prompt_version)
        body = await self._request("POST", "chat/completions", request)
        p = _p_yes_or_none(body)
        if p is None:
            self.uninformative += 1
            return UNINFORMATIVE
        return p

    async def _request(self, method: str, path: str, payload: dict[str, Any] | None = None
                       ) -> dict[str, Any]:
        """One request, retried on transient failures; it holds a concurrency slot throughout,
        so while a server is down only `max_concurrency` requests retry and the rest wait."""
        async with self._slots:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                return await self._with_retries(method, path, payload)
            finally:
                self.in_flight -= 1

    async def _with_retries(self, method: str, path: str, payload: dict[str, Any] | None
                            ) -> dict[str, Any]:
        retry = 0
        while True:
            try:
                return await self._attempt(method, path, payload)
            except _Retryable as failure:
                if retry == self.retry.max_retries:
                    raise JudgeError(
                        f"the judge server at {self.base_url} is unreachable: gave up after "
                        f"{retry} retries ({failure})") from None
                wait = self.retry.delay(retry, failure.retry_after)
                retry += 1
                self.retries += 1
                logger.warning("judge server %s: %s; retry %d/%d in %.1f s", self.base_url,
                               failure, retry, self.retry.max_retries, wait)
                await asyncio.sleep(wait)

    async def _attempt(self, method: str, path: str, payload: dict[str, Any] | None
                       ) -> dict[str, Any]:
        try:
            response = await self._client.request(method, path, json=payload)
        except httpx.TransportError as exc:  # refused, reset, timed out, ...
            raise _Retryable(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        status = response.status_code
        if status in RETRY_STATUSES or status >= 500:
            raise _Retryable(f"HTTP {status}: {error_message(response)[:200]}",
                             _retry_after(response))
        if status >= 400:
            message = error_message(response)
            hint = f" ({NO_LOGPROBS_HINT})" if "logprob" in message.lower() else ""
            raise JudgeError(f"the judge server at {self.base_url} rejected {method} /{path} "
                             f"(HTTP {status}): {message}{hint}")
        try:
            body = response.json()
        except ValueError as exc:
            raise JudgeError(f"the judge server at {self.base_url} answered {method} /{path} "
                             f"with something that is not JSON: {response.text[:200]!r}") from exc
        if not isinstance(body, dict):
            raise JudgeError(f"unexpected response to {method} /{path}: {_excerpt(body)}")
        return body

    def close(self) -> None:
        """Cancel what is still in flight, close the connections and stop the loop thread."""
        with self._submit_lock:
            if self._closed:
                return
            self._closed = True
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        client = getattr(self, "_client", None)
        if client is not None:
            await client.aclose()


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None  # absent, or an HTTP date: fall back to our own backoff
