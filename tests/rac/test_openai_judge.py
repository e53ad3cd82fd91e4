"""The HTTP judge against a real llama.cpp OpenAI-compatible server running the bundled SmolLM2.

The server is a real subprocess on a loopback port; the outage tests kill it (SIGKILL, so
in-flight connections are reset) and restart it on the same port. The parsing tests use responses
recorded from that server (`python -m tests.rac.llama_server record` rewrites them).
"""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from app.rac.judge import JudgeError
from app.rac.judges.openai_http import (
    UNINFORMATIVE,
    NoLogprobsError,
    OpenAIJudge,
    RetryPolicy,
    error_message,
    first_model_id,
    p_yes_from_chat_response,
)
from app.rac.prompts import LabelInfo, Question
from tests.rac.llama_server import DATA_DIR, MODEL_ALIAS, LlamaServer

pytestmark = pytest.mark.slow

API_KEY = "test-judge-key"

REFUND = LabelInfo("refund_request", "The customer asks to get their money back.",
                   ("Please refund me", "I want my money back"))
CARD = LabelInfo("card_arrival", "The customer's new card has not arrived yet.")
STOLEN = LabelInfo("lost_or_stolen_card", "The customer's card was lost or stolen.")
TEXTS = [
    "I want my money back for this order", "My card still has not come in the post",
    "Someone stole my wallet with my debit card in it", "How do I change my PIN?",
    "The parcel arrived broken, please refund me", "When will my new card be delivered?",
    "I can't find my card anywhere", "Why was I charged twice?", "hello",
    "Cancel my subscription and return the fee",
]
BATCH = [Question(text, label) for text in TEXTS for label in (REFUND, CARD, STOLEN)]  # 30

# The questions whose real responses are recorded in tests/rac/data (see llama_server.record).
RECORDED_QUESTIONS = {
    "chat_refund_fits": Question("refund", LabelInfo("refund", "refund")),
    "chat_card_does_not_fit": Question("I want my money back for this order", CARD),
}

# Answers of the same model through HTTP and in process differ only by the yes/no spellings
# outside the server's top 20 (e.g. 'NO', ' no'), which the in-process judge also counts.
# Measured: at most 5.4e-05 over BATCH, always slightly towards yes (the missed tail is mostly
# 'no' variants); the in-process logits restricted to the same top 20 reproduce the HTTP answer
# to 1e-6. 1e-3 leaves room for other thread counts and batch splits while still catching a
# different prompt: on the sampled questions an added BOS token moves P(yes) by 4e-3 to 3e-2, and
# dropping the newline after the template's generation prompt by 5e-2 to 0.14.
AGREEMENT = 1e-3
# Repeated answers of the server: bit-identical in practice; prefix-cache reuse may change the
# evaluation split of a prompt, so allow float noise.
DETERMINISM = 1e-5


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaServer]:
    with LlamaServer(n_ctx=2048, api_key=API_KEY) as s:
        yield s


@pytest.fixture
def live(server: LlamaServer) -> LlamaServer:
    """The server, up (a test that stopped it may have failed before restarting it)."""
    return server.start()


def make_judge(server: LlamaServer, **kwargs: Any) -> OpenAIJudge:
    return OpenAIJudge(server.base_url, api_key=API_KEY, **kwargs)


@pytest.fixture(scope="module")
def batch_answers(server: LlamaServer) -> tuple[list[float], int, float]:
    """BATCH answered once at concurrency 4: (answers, peak requests in flight, seconds)."""
    judge = make_judge(server.start(), max_concurrency=4)
    try:
        started = time.perf_counter()
        answers = judge.p_yes(BATCH)
        return answers, judge.peak_in_flight, time.perf_counter() - started
    finally:
        judge.close()


# --- against the live server -------------------------------------------------------------------

def test_model_is_discovered_and_answers_are_deterministic_probabilities(live):
    judge = make_judge(live)
    try:
        assert judge.model == MODEL_ALIAS
        assert judge.model_id == f"openai:{MODEL_ALIAS}"
        first = judge.p_yes(BATCH[:4])
        assert all(0.0 < p < 1.0 for p in first)
        assert judge.p_yes(BATCH[:4]) == pytest.approx(first, abs=DETERMINISM)
        assert judge.p_yes([]) == []
        assert judge.stats.calls == 8 and judge.retries == 0
    finally:
        judge.close()


def test_agrees_with_the_in_process_judge(live, batch_answers):
    from app.rac.judges.llama_cpp import LlamaCppJudge

    # One thread: on a busy machine two spinning llama.cpp threads slow each other down.
    local = LlamaCppJudge(n_ctx=2048, n_threads=1)
    try:
        # One question per item, the labels in turn: every item and label, a third of the time.
        sample = [3 * item + item % 3 for item in range(len(TEXTS))]
        expected = local.p_yes([BATCH[i] for i in sample])
    finally:
        local.close()
    got = [batch_answers[0][i] for i in sample]
    assert got == pytest.approx(expected, abs=AGREEMENT)


def test_another_prompt_version_is_what_the_server_is_asked(live, batch_answers):
    from app.rac.judges.llama_cpp import LlamaCppJudge

    sample = [3 * item + item % 3 for item in range(4)]
    questions = [BATCH[i] for i in sample]
    local = LlamaCppJudge(n_ctx=2048, n_threads=1, prompt_version="yn-1")
    remote = make_judge(live, prompt_version="yn-1")
    try:
        expected = local.p_yes(questions)
        got = remote.p_yes(questions)
    finally:
        local.close()
        remote.close()
    assert remote.prompt_version == "yn-1"
    assert got == pytest.approx(expected, abs=AGREEMENT)
    # another question than the default's: its answers differ by far more than AGREEMENT
    default = [batch_answers[0][i] for i in sample]
    assert max(abs(a - b) for a, b in zip(got, default, strict=True)) > 10 * AGREEMENT


def test_an_unknown_prompt_version_is_refused_before_any_request():
    with pytest.raises(ValueError, match="unknown prompt version 'yn-9'; known: yn-1, yn-2"):
        OpenAIJudge("http://127.0.0.1:9/v1", prompt_version="yn-9")


def test_many_questions_at_once_with_bounded_concurrency(batch_answers):
    answers, peak, _ = batch_answers
    assert len(answers) == len(BATCH)
    assert all(0.0 < p < 1.0 for p in answers)
    assert peak == 4  # requests really overlapped, and never more than allowed


def test_calls_from_many_threads_share_one_bound(live, batch_answers):
    judge = make_judge(live, max_concurrency=2)
    try:
        with ThreadPoolExecutor(3) as pool:
            chunks = list(pool.map(judge.p_yes, [BATCH[0:3], BATCH[3:6], BATCH[6:9]]))
        assert [p for chunk in chunks for p in chunk] == pytest.approx(
            batch_answers[0][:9], abs=DETERMINISM)
        assert judge.peak_in_flight == 2
    finally:
        judge.close()


def test_a_server_killed_mid_batch_and_restarted_does_not_fail_the_batch(live, batch_answers):
    # Short backoff keeps the test quick: the retries cover ~12 s, the outage lasts ~5 s.
    judge = make_judge(live, max_concurrency=4, backoff_base=0.25, backoff_max=2.0)
    questions = BATCH[:12]
    try:
        with ThreadPoolExecutor(1) as pool:
            batch = pool.submit(judge.p_yes, questions)
            deadline = time.monotonic() + 30
            while judge.in_flight < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)  # some answers are in, more are in flight, the rest wait
            assert judge.in_flight > 0 and not batch.done(), "nothing in flight to interrupt"
            live.stop(kill=True)
            time.sleep(3.0)
            live.start()
            answers = batch.result(timeout=120)
        assert judge.retries > 0
        assert answers == pytest.approx(batch_answers[0][:12], abs=DETERMINISM)
    finally:
        judge.close()


def test_a_server_that_never_comes_back_fails_after_the_retries(live):
    judge = make_judge(live, max_retries=3, backoff_base=0.05, backoff_max=0.2)
    try:
        live.stop(kill=True)
        started = time.perf_counter()
        with pytest.raises(JudgeError, match=r"at http://127\.0\.0\.1:\d+/v1 is unreachable"):
            judge.p_yes(BATCH[:6])
        assert time.perf_counter() - started < 10
        assert judge.retries >= 3
    finally:
        judge.close()
        live.start()


def test_an_unreachable_server_at_startup_is_a_judge_error():
    # Model discovery goes through the same retries.
    with pytest.raises(JudgeError, match="unreachable"):
        OpenAIJudge("http://127.0.0.1:9/v1", max_retries=1, backoff_base=0.01)


def test_a_rejected_request_is_not_retried_and_says_why(live):
    # A long backoff: had the 400 been retried, this test would take 10 s.
    judge = make_judge(live, backoff_base=10.0)
    try:
        too_long = Question("word " * 3000, REFUND)
        started = time.perf_counter()
        with pytest.raises(JudgeError, match=r"HTTP 400.*maximum context length"):
            judge.p_yes([too_long])
        assert judge.retries == 0
        assert time.perf_counter() - started < 5
    finally:
        judge.close()


def test_a_wrong_api_key_is_not_retried(live):
    with pytest.raises(JudgeError, match="HTTP 401") as raised:
        OpenAIJudge(live.base_url, api_key="wrong", backoff_base=10.0)
    assert "unreachable" not in str(raised.value)
    judge = OpenAIJudge(live.base_url, MODEL_ALIAS, api_key="wrong", backoff_base=10.0)
    try:
        with pytest.raises(JudgeError, match="HTTP 401"):
            judge.p_yes(BATCH[:1])
        assert judge.retries == 0
    finally:
        judge.close()


def test_a_server_without_logprobs_is_a_clear_error(live):
    # The real server, asked without logprobs, answers exactly as a server that withholds them.
    body = httpx.post(f"{live.base_url}/chat/completions", headers=live.headers, timeout=60,
                      json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
                      ).json()
    assert body["choices"][0]["logprobs"] is None
    with pytest.raises(NoLogprobsError, match="--max-logprobs"):
        p_yes_from_chat_response(body)


def test_close_is_idempotent_and_final(live):
    judge = make_judge(live)
    judge.close()
    judge.close()
    assert not judge._thread.is_alive()
    with pytest.raises(JudgeError, match="closed"):
        judge.p_yes(BATCH[:1])


def test_close_while_answering_ends_the_call(live):
    judge = make_judge(live, max_concurrency=1)
    failure: list[BaseException] = []

    def ask() -> None:
        try:
            judge.p_yes(BATCH)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failure.append(exc)

    caller = threading.Thread(target=ask)
    caller.start()
    time.sleep(0.5)
    judge.close()
    caller.join(timeout=30)
    assert not caller.is_alive()
    assert failure and isinstance(failure[0], JudgeError)


# --- parsing, on responses recorded from the real server ---------------------------------------

def recorded(name: str) -> dict[str, Any]:
    return json.loads((DATA_DIR / f"{name}.json").read_text())


def top_tokens(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body["choices"][0]["logprobs"]["content"][0]["top_logprobs"]


def by_hand(body: dict[str, Any]) -> float:
    """P(yes) computed the obvious way from the recorded top tokens."""
    mass = {"yes": 0.0, "no": 0.0}
    for entry in top_tokens(body):
        word = entry["token"].strip().lower()
        if word in mass:
            mass[word] += math.exp(entry["logprob"])
    return mass["yes"] / (mass["yes"] + mass["no"])


@pytest.mark.parametrize("name", sorted(RECORDED_QUESTIONS))
def test_recorded_answers_sum_every_spelling_of_yes_and_no(name):
    body = recorded(name)["body"]
    spellings = {e["token"] for e in top_tokens(body)}
    assert {"Yes", "yes", "No", "no"} <= spellings  # the server does return several variants
    assert p_yes_from_chat_response(body) == pytest.approx(by_hand(body), rel=1e-12)


def test_recorded_answers_order_the_questions():
    fits = p_yes_from_chat_response(recorded("chat_refund_fits")["body"])
    does_not = p_yes_from_chat_response(recorded("chat_card_does_not_fit")["body"])
    assert 0.0 < does_not < fits < 1.0


def test_spelling_variants_of_the_answer_words_count_the_same():
    body = recorded("chat_refund_fits")["body"]
    expected = p_yes_from_chat_response(body)
    respelled = copy.deepcopy(body)
    rename = {"Yes": " yes", "yes": "YES.", "No": " no", "no": "NO"}
    for entry in top_tokens(respelled):
        entry["token"] = rename.get(entry["token"], entry["token"])
    assert p_yes_from_chat_response(respelled) == pytest.approx(expected, rel=1e-12)


def test_only_yes_and_no_words_count():
    body = copy.deepcopy(recorded("chat_refund_fits")["body"])
    top = top_tokens(body)
    no_mass = sum(math.exp(e["logprob"]) for e in top if e["token"].strip().lower() == "no")
    top[:] = [e for e in top if e["token"].strip().lower() != "no"]
    assert no_mass > 0
    assert p_yes_from_chat_response(body) == 1.0  # 'Not', 'Y', ... are not answers


def test_top_tokens_without_yes_or_no_are_uninformative():
    body = recorded("chat_open_question")["body"]
    assert all(e["token"].strip().lower() not in {"yes", "no"} for e in top_tokens(body))
    assert p_yes_from_chat_response(body) == UNINFORMATIVE == 0.5


@pytest.mark.parametrize("strip", ["missing", "null", "empty content", "empty top"])
def test_a_recorded_response_without_logprobs_is_a_clear_error(strip):
    body = copy.deepcopy(recorded("chat_refund_fits")["body"])
    choice = body["choices"][0]
    if strip == "missing":
        del choice["logprobs"]
    elif strip == "null":
        choice["logprobs"] = None
    elif strip == "empty content":
        choice["logprobs"]["content"] = []
    else:
        choice["logprobs"]["content"][0]["top_logprobs"] = []
    with pytest.raises(NoLogprobsError, match=r"returned no logprobs.*--max-logprobs 20"):
        p_yes_from_chat_response(body)


def test_a_response_without_choices_is_a_judge_error():
    with pytest.raises(JudgeError, match="no choices"):
        p_yes_from_chat_response({"choices": []})


def test_recorded_model_list_and_error():
    assert first_model_id(recorded("models")["body"]) == MODEL_ALIAS
    with pytest.raises(JudgeError, match="no models"):
        first_model_id({"object": "list", "data": []})
    error = recorded("error_context_length")
    assert error["status"] == 400
    response = httpx.Response(400, json=error["body"])
    assert error_message(response).startswith("This model's maximum context length is 2048")
    assert error_message(httpx.Response(404, json={"detail": "Not Found"})) == "Not Found"
    assert error_message(httpx.Response(502, text="Bad gateway\n")) == "Bad gateway"


def test_recorded_requests_are_what_the_judge_sends():
    request = recorded("chat_refund_fits")["request"]
    assert {k: request[k] for k in ("max_tokens", "temperature", "logprobs", "top_logprobs")} \
        == {"max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 20}


def test_retry_policy_survives_a_minute_with_the_defaults():
    policy = RetryPolicy()
    assert 0.8 * policy.total() > 60  # the shortest possible retry window, all jitter included
    delays = [policy.delay(n) for n in range(policy.max_retries)]
    assert all(0.8 * min(30.0, 0.5 * 2**n) <= d <= min(30.0, 0.5 * 2**n)
               for n, d in enumerate(delays))
    assert policy.delay(0, retry_after=5.0) == 5.0
    assert policy.delay(0, retry_after=600.0) == 30.0  # a server's request is honoured, bounded

