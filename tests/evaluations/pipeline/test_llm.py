from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from evaluations.pipeline.llm import (
    CircuitOpenError,
    LLMClient,
    LLMConfig,
    LLMPermanentError,
    LLMTransientError,
    MalformedResponse,
    parse_json_object,
    parse_retry_after,
)

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
Completion = Callable[..., dict[str, Any]]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(
    httpserver: HTTPServer, sleeps: list[float], clock: FakeClock
) -> Iterator[Callable[..., LLMClient]]:
    clients: list[LLMClient] = []

    def build(**overrides: Any) -> LLMClient:
        options: dict[str, Any] = {
            "base_url": httpserver.url_for("/v1"),
            "api_key": "sk-test-key",
            "models": ("model-a",),
            "timeout_seconds": 2,
            "max_retries": 2,
            "backoff_base": 0.5,
            "backoff_max": 4.0,
        }
        options.update(overrides)
        client = LLMClient(
            LLMConfig(**options),
            sleep=sleeps.append,
            clock=clock,
            rng=random.Random(3),
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


def _request_json(request: Request) -> dict[str, Any]:
    return json.loads(request.get_data())


def _bodies(httpserver: HTTPServer) -> list[dict[str, Any]]:
    return [_request_json(request) for request, _ in httpserver.log]


def test_successful_call(
    httpserver: HTTPServer,
    make_client: Callable[..., LLMClient],
    json_completion: Completion,
) -> None:
    httpserver.expect_request(
        CHAT, method="POST", headers={"Authorization": "Bearer sk-test-key"}
    ).respond_with_json(json_completion({"verdict": "ok"}))
    response = make_client().chat_json("You are a judge.", "Evaluate this.")
    assert response.content == {"verdict": "ok"}
    assert response.raw_text == '{"verdict": "ok"}'
    assert response.model == "model-a"
    assert (response.prompt_tokens, response.completion_tokens) == (120, 30)
    assert response.attempts == 1
    assert response.duration_ms >= 0
    (body,) = _bodies(httpserver)
    assert body == {
        "model": "model-a",
        "messages": [
            {"role": "system", "content": "You are a judge."},
            {"role": "user", "content": "Evaluate this."},
        ],
        "temperature": 0,
        "response_format": {"type": "json_object"},
    }


def test_extra_messages_follow_the_user_message(
    httpserver: HTTPServer,
    make_client: Callable[..., LLMClient],
    json_completion: Completion,
) -> None:
    httpserver.expect_request(CHAT).respond_with_json(json_completion({"a": 1}))
    make_client(json_mode=False).chat_json(
        "sys", "user", extra_messages=[("assistant", "bad"), ("user", "fix it")]
    )
    (body,) = _bodies(httpserver)
    assert [m["role"] for m in body["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
    ]
    assert "response_format" not in body


def test_429_honours_retry_after_seconds(
    httpserver: HTTPServer,
    make_client: Callable[..., LLMClient],
    json_completion: Completion,
    sleeps: list[float],
) -> None:
    httpserver.expect_ordered_request(CHAT).respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "3"})
    )
    httpserver.expect_ordered_request(CHAT).respond_with_json(json_completion({"a": 1}))
    response = make_client().chat_json("s", "u")
    assert response.content == {"a": 1}
    assert response.attempts == 2
    assert sleeps == [3.0]


def test_retry_after_http_date_and_cap(
    httpserver: HTTPServer,
    make_client: Callable[..., LLMClient],
    json_completion: Completion,
    sleeps: list[float],
) -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=6), usegmt=True)
    httpserver.expect_ordered_request(CHAT).respond_with_response(
        Response(status=503, headers={"Retry-After": soon})
    )
    httpserver.expect_ordered_request(CHAT).respond_with_response(
        Response(status=429, headers={"Retry-After": "3600"})
    )
    httpserver.expect_ordered_request(CHAT).respond_with_json(json_completion({"a": 1}))
    make_client().chat_json("s", "u")
    assert 4.0 <= sleeps[0] <= 6.0
    # An hour is capped at four times the longest back-off.
    assert sleeps[1] == 16.0


def test_server_errors_are_retried_with_jittered_backoff(
    httpserver: HTTPServer,
    make_client: Callable[..., LLMClient],
    json_completion: Completion,
    sleeps: list[float],
) -> None:
    for status in (500, 502):
        httpserver.expect_ordered_request(CHAT).respond_with_data("oops", status=status)
    httpserver.expect_ordered_request(CHAT).respond_with_json(json_completion({"a": 1}))
    response = make_client().chat_json("s", "u")
    assert response.attempts == 3
    assert len(sleeps) == 2
    # Full jitter: uniform between 0 and base * 2^retry.
    assert 0 <= sleeps[0] <= 0.5
    assert 0 <= sleeps[1] <= 1.0


def test_timeouts_move_on_to_the_next_model(
    httpserver: HTTPServer,
    make_client: Callable[..., LLMClient],
    json_completion: Completion,
) -> None:
    released = threading.Event()

    def handler(request: Request) -> Response:
        model = _request_json(request)["model"]
        if model == "slow-model":
            released.wait(timeout=5)
        return Response(
            json.dumps(json_completion({"answered_by": model})),
            content_type="application/json",
        )

    httpserver.expect_request(CHAT).respond_with_handler(handler)
    client = make_client(
        models=("slow-model", "fast-model"), timeout_seconds=0.2, max_retries=1
    )
    try:
        response = client.chat_json("s", "u")
    finally:
        # Let the abandoned slow requests finish so they cannot land in the
        # next test's request log.
        released.set()
        deadline = time.monotonic() + 5
        while len(httpserver.log) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert response.content == {"answered_by": "fast-model"}
    assert response.model == "fast-model"
    assert response.attempts == 3
    assert sorted(body["model"] for body in _bodies(httpserver)) == [
        "fast-model",
        "slow-model",
        "slow-model",
    ]


def test_every_model_failing_is_a_transient_error(
    httpserver: HTTPServer,
    make_client: Callable[..., LLMClient],
    sleeps: list[float],
) -> None:
    httpserver.expect_request(CHAT).respond_with_data("down", status=503)
    client = make_client(models=("model-a", "model-b"), max_retries=1)
    with pytest.raises(LLMTransientError) as caught:
        client.chat_json("s", "u")
    assert caught.value.transient is True
    assert caught.value.code == "llm_unavailable"
    assert [body["model"] for body in _bodies(httpserver)] == [
        "model-a",
        "model-a",
        "model-b",
        "model-b",
    ]
    # Back-off applies between retries of one model, not between models.
    assert len(sleeps) == 2


def test_connection_refused_is_transient(
    make_client: Callable[..., LLMClient], sleeps: list[float]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{port}/v1", max_retries=1)
    with pytest.raises(LLMTransientError):
        client.chat_json("s", "u")
    assert len(sleeps) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_authentication_failures_are_permanent_for_every_model(
    httpserver: HTTPServer, make_client: Callable[..., LLMClient], status: int
) -> None:
    httpserver.expect_request(CHAT).respond_with_data("no", status=status)
    client = make_client(models=("model-a", "model-b"))
    with pytest.raises(LLMPermanentError) as caught:
        client.chat_json("s", "u")
    assert caught.value.transient is False
    assert caught.value.code == "llm_rejected"
    assert len(httpserver.log) == 1


def test_a_rejected_model_falls_back_to_the_next(
    httpserver: HTTPServer,
    make_client: Callable[..., LLMClient],
    json_completion: Completion,
    sleeps: list[float],
) -> None:
    httpserver.expect_ordered_request(CHAT).respond_with_json(
        {"error": {"message": "model not found"}}, status=404
    )
    httpserver.expect_ordered_request(CHAT).respond_with_json(json_completion({"a": 1}))
    client = make_client(models=("retired-model", "model-b"))
    response = client.chat_json("s", "u")
    assert response.model == "model-b"
    assert sleeps == []


def test_every_model_rejected_is_permanent(
    httpserver: HTTPServer, make_client: Callable[..., LLMClient]
) -> None:
    httpserver.expect_request(CHAT).respond_with_json({"error": "bad"}, status=400)
    with pytest.raises(LLMPermanentError):
        make_client(models=("model-a", "model-b")).chat_json("s", "u")
    assert len(httpserver.log) == 2


def test_json_mode_is_dropped_when_the_provider_refuses_it(
    httpserver: HTTPServer,
    make_client: Callable[..., LLMClient],
    json_completion: Completion,
) -> None:
    httpserver.expect_ordered_request(CHAT).respond_with_json(
        {"error": {"message": "response_format is not supported by this model"}},
        status=400,
    )
    httpserver.expect_ordered_request(CHAT).respond_with_json(json_completion({"a": 1}))
    httpserver.expect_ordered_request(CHAT).respond_with_json(json_completion({"b": 2}))
    client = make_client()
    assert client.chat_json("s", "u").content == {"a": 1}
    # The client remembers, so the next call does not pay for the refusal again.
    assert client.chat_json("s", "u").content == {"b": 2}
    bodies = _bodies(httpserver)
    assert "response_format" in bodies[0]
    assert "response_format" not in bodies[1]
    assert "response_format" not in bodies[2]


@pytest.mark.parametrize(
    "content",
    [
        "Sure! The score is 4.",
        '["not", "an", "object"]',
        '{"truncated": ',
        "",
        None,
    ],
)
def test_malformed_answers(
    httpserver: HTTPServer,
    make_client: Callable[..., LLMClient],
    completion: Completion,
    content: str | None,
) -> None:
    httpserver.expect_request(CHAT).respond_with_json(completion(content))
    with pytest.raises(MalformedResponse) as caught:
        make_client().chat_json("s", "u")
    error = caught.value
    assert error.code == "llm_invalid_output"
    assert error.transient is False
    assert error.raw_text == (content or "")
    assert error.model == "model-a"
    assert (error.prompt_tokens, error.completion_tokens) == (120, 30)
    # The provider answered: a malformed answer is not retried here.
    assert len(httpserver.log) == 1


def test_malformed_envelope(
    httpserver: HTTPServer, make_client: Callable[..., LLMClient]
) -> None:
    httpserver.expect_request(CHAT).respond_with_data("<html>proxy</html>", status=200)
    with pytest.raises(MalformedResponse):
        make_client().chat_json("s", "u")


def test_fenced_json_is_accepted(
    httpserver: HTTPServer,
    make_client: Callable[..., LLMClient],
    completion: Completion,
) -> None:
    httpserver.expect_request(CHAT).respond_with_json(
        completion('```json\n{"score": 4}\n```')
    )
    assert make_client().chat_json("s", "u").content == {"score": 4}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('  ```json\n{"a": 1}\n```  ', {"a": 1}),
        ('```\n{"a": 1}\n```', {"a": 1}),
        ('<think>The CV is strong.</think>\n{"a": 1}', {"a": 1}),
    ],
)
def test_parse_json_object(text: str, expected: dict[str, Any]) -> None:
    assert parse_json_object(text) == expected


@pytest.mark.parametrize("text", ['Here you go: {"a": 1}', "```json\n[1]\n```", "{"])
def test_parse_json_object_refuses_anything_else(text: str) -> None:
    with pytest.raises(MalformedResponse):
        parse_json_object(text)


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after("1.5", now=now) == 1.5
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:10 GMT", now=now) == 10.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    for useless in (None, "", "soon", "-3", "nan"):
        assert parse_retry_after(useless, now=now) is None


# --- Circuit breaker ---------------------------------------------------------


def test_circuit_breaker_opens_short_circuits_and_half_opens(
    httpserver: HTTPServer,
    make_client: Callable[..., LLMClient],
    json_completion: Completion,
    clock: FakeClock,
) -> None:
    httpserver.expect_request(CHAT).respond_with_data("down", status=503)
    client = make_client(
        max_retries=0, breaker_failure_threshold=3, breaker_reset_seconds=30
    )
    for _ in range(3):
        with pytest.raises(LLMTransientError):
            client.chat_json("s", "u")
    assert len(httpserver.log) == 3
    assert client.breaker.state == "open"

    # Open: refused at once, without an HTTP request, and still transient.
    with pytest.raises(CircuitOpenError) as caught:
        client.chat_json("s", "u")
    assert caught.value.transient is True
    assert caught.value.retry_after == 30
    clock.advance(29)
    with pytest.raises(CircuitOpenError):
        make_client().chat_json("s", "u")  # shared by every client of the URL
    assert len(httpserver.log) == 3

    # Half-open after the reset time: one trial goes through; its failure reopens.
    clock.advance(1)
    with pytest.raises(LLMTransientError):
        client.chat_json("s", "u")
    assert len(httpserver.log) == 4
    with pytest.raises(CircuitOpenError):
        client.chat_json("s", "u")
    assert len(httpserver.log) == 4

    # The next trial succeeds and closes the circuit.
    httpserver.clear()
    httpserver.expect_request(CHAT).respond_with_json(json_completion({"a": 1}))
    clock.advance(30)
    assert client.chat_json("s", "u").content == {"a": 1}
    assert client.breaker.state == "closed"
    assert client.chat_json("s", "u").content == {"a": 1}
    assert len(httpserver.log) == 2


def test_breaker_counts_consecutive_failures_only(
    httpserver: HTTPServer,
    make_client: Callable[..., LLMClient],
    json_completion: Completion,
) -> None:
    for _ in range(2):
        httpserver.expect_ordered_request(CHAT).respond_with_data("x", status=500)
    httpserver.expect_ordered_request(CHAT).respond_with_json(json_completion({"a": 1}))
    for _ in range(2):
        httpserver.expect_ordered_request(CHAT).respond_with_data("x", status=500)
    client = make_client(max_retries=0, breaker_failure_threshold=3)
    for _ in range(2):
        with pytest.raises(LLMTransientError):
            client.chat_json("s", "u")
    client.chat_json("s", "u")
    for _ in range(2):
        with pytest.raises(LLMTransientError):
            client.chat_json("s", "u")
    assert client.breaker.state == "closed"


def test_open_breaker_stops_retries_and_model_fallback(
    httpserver: HTTPServer, make_client: Callable[..., LLMClient]
) -> None:
    httpserver.expect_request(CHAT).respond_with_data("down", status=500)
    client = make_client(
        models=("model-a", "model-b"), max_retries=5, breaker_failure_threshold=2
    )
    with pytest.raises(CircuitOpenError):
        client.chat_json("s", "u")
    assert len(httpserver.log) == 2


# --- Embeddings --------------------------------------------------------------


def test_embeddings_in_input_order(
    httpserver: HTTPServer, make_client: Callable[..., LLMClient]
) -> None:
    httpserver.expect_request(EMBEDDINGS, method="POST").respond_with_json(
        {
            "data": [
                {"index": 1, "embedding": [0.0, 1.0]},
                {"index": 0, "embedding": [1.0, 0]},
            ],
            "model": "embed-small",
        }
    )
    vectors = make_client().embed(["first", "second"], "embed-small")
    assert vectors == [[1.0, 0.0], [0.0, 1.0]]
    (body,) = _bodies(httpserver)
    assert body == {"model": "embed-small", "input": ["first", "second"]}


def test_embeddings_are_retried(
    httpserver: HTTPServer,
    make_client: Callable[..., LLMClient],
    sleeps: list[float],
) -> None:
    httpserver.expect_ordered_request(EMBEDDINGS).respond_with_data("x", status=502)
    httpserver.expect_ordered_request(EMBEDDINGS).respond_with_json(
        {"data": [{"index": 0, "embedding": [0.5]}]}
    )
    assert make_client().embed(["only"], "embed-small") == [[0.5]]
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"data": []},
        {"data": [{"index": 0, "embedding": "nope"}]},
        {"data": [{"index": 0, "embedding": [1, 2]}, {"index": 1, "embedding": [1]}]},
        {"nothing": True},
    ],
)
def test_malformed_embeddings(
    httpserver: HTTPServer, make_client: Callable[..., LLMClient], payload: Any
) -> None:
    httpserver.expect_request(EMBEDDINGS).respond_with_json(payload)
    texts = ["a"] if len(payload.get("data", [])) < 2 else ["a", "b"]
    with pytest.raises(MalformedResponse):
        make_client().embed(texts, "embed-small")


def test_no_texts_no_request(
    httpserver: HTTPServer, make_client: Callable[..., LLMClient]
) -> None:
    assert make_client().embed([], "embed-small") == []
    assert httpserver.log == []


# --- Privacy -----------------------------------------------------------------


def test_logs_never_contain_prompts_answers_or_keys(
    httpserver: HTTPServer,
    make_client: Callable[..., LLMClient],
    completion: Completion,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "CANARY Jane Doe, jane@example.com"
    httpserver.expect_ordered_request(CHAT).respond_with_data(
        "rate limited: " + secret, status=429
    )
    httpserver.expect_ordered_request(CHAT).respond_with_data(secret, status=500)
    httpserver.expect_ordered_request(CHAT).respond_with_json(completion(secret))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(MalformedResponse):
        make_client().chat_json("system " + secret, "user " + secret)
    assert "model-a" in caplog.text
    assert "CANARY" not in caplog.text
    assert "sk-test-key" not in caplog.text


def test_api_key_is_not_in_the_config_repr() -> None:
    config = LLMConfig(base_url="http://x", api_key="sk-secret", models=("m",))
    assert "sk-secret" not in repr(config)


def test_config_needs_a_model() -> None:
    with pytest.raises(ValueError, match="model"):
        LLMConfig(base_url="http://x", api_key="", models=())
