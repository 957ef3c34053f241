from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from evaluations.pipeline.llm import reset_circuit_breakers


@pytest.fixture(scope="session")
def make_httpserver() -> Iterator[HTTPServer]:
    """The fake LLM vendor, threaded so a deliberately slow answer blocks no one."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_circuit_breakers() -> Iterator[None]:
    # Breakers are shared per base URL, and every test talks to the same server.
    reset_circuit_breakers()
    yield
    reset_circuit_breakers()


@pytest.fixture
def sleeps() -> list[float]:
    """Records the back-off waits of a client built with `sleep=sleeps.append`."""
    return []


def _chat_completion(
    content: str | None, *, model: str = "model-a", usage: bool = True
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 120, "completion_tokens": 30}
    return body


@pytest.fixture
def completion() -> Callable[..., dict[str, Any]]:
    """Builds an OpenAI-style chat completion whose answer is the given text."""
    return _chat_completion


@pytest.fixture
def json_completion() -> Callable[..., dict[str, Any]]:
    """Builds a chat completion whose answer is the given value as JSON."""

    def build(value: Any, **kwargs: Any) -> dict[str, Any]:
        return _chat_completion(json.dumps(value), **kwargs)

    return build
