"""The client for OpenAI-compatible chat and embeddings APIs.

This is the only module that talks to an LLM vendor. It speaks the
`/chat/completions` and `/embeddings` dialect that OpenAI, OpenRouter, Groq,
Ollama, vLLM and most others share, and it owns every resilience concern:
per-call timeouts, retries with exponential backoff and full jitter, honouring
`Retry-After`, falling back through an ordered list of models, and a circuit
breaker per provider so a dead provider is not hammered by every worker.

Errors are `LLMError` subclasses whose `transient` flag tells the caller
whether trying again later can help.

Logs name models, status codes, durations and attempt numbers only. Prompts,
answers and provider error bodies are never logged: they can carry a
candidate's personal data.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import httpx
from prometheus_client import Counter, Histogram

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES: Final = 8 * 1024 * 1024
EMBEDDING_BATCH_SIZE: Final = 128
_FATAL_STATUSES: Final = frozenset({401, 403})
_RETRYABLE_STATUSES: Final = frozenset({408, 429})
_FENCED_JSON: Final = re.compile(r"\A```[a-zA-Z]*[ \t]*\n?(.*?)\n?```\Z", re.DOTALL)
# Reasoning models served through OpenAI-compatible gateways may put their
# chain of thought before the answer.
_THINKING: Final = re.compile(r"\A<think>.*?</think>", re.DOTALL)


class LLMError(Exception):
    """A failed LLM call. `transient` says whether a later retry may succeed."""

    code: str = "llm_error"
    transient: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class LLMTransientError(LLMError):
    code = "llm_unavailable"
    transient = True


class CircuitOpenError(LLMTransientError):
    """The provider failed repeatedly; calls are refused for a while."""


class LLMPermanentError(LLMError):
    code = "llm_rejected"
    transient = False


class MalformedResponse(LLMError):
    """The provider answered, but not with the JSON object that was asked for."""

    code = "llm_invalid_output"
    transient = False

    def __init__(
        self,
        message: str,
        *,
        raw_text: str = "",
        model: str = "",
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        super().__init__(message)
        self.raw_text = raw_text
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    api_key: str = field(repr=False)
    models: tuple[str, ...]
    timeout_seconds: float = 30
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    json_mode: bool = True
    breaker_failure_threshold: int = 5
    breaker_reset_seconds: float = 30

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("At least one model must be configured.")
        if self.max_retries < 0 or self.breaker_failure_threshold < 1:
            raise ValueError("Retry and breaker limits must be positive.")
        if self.timeout_seconds <= 0:
            raise ValueError("The timeout must be positive.")


@dataclass(frozen=True)
class LLMResponse:
    content: dict[str, Any]
    raw_text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    duration_ms: int
    attempts: int


# --- Circuit breaker ---------------------------------------------------------


class CircuitBreaker:
    """Consecutive transient failures open the circuit for `reset_seconds`.

    Once that time has passed one trial call is let through (half-open): its
    success closes the circuit, its failure opens it again. Times come from the
    caller so tests can drive the clock.
    """

    def __init__(self, failure_threshold: int, reset_seconds: float) -> None:
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half_open" if self._trial_in_flight else "open"

    def acquire(self, now: float) -> float | None:
        """None when a call may go ahead, else the seconds until the next trial."""
        with self._lock:
            if self._opened_at is None:
                return None
            remaining = self._opened_at + self.reset_seconds - now
            if remaining > 0 or self._trial_in_flight:
                return max(remaining, 0.0) or self.reset_seconds
            self._trial_in_flight = True
            return None

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self, now: float) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_in_flight or self._failures >= self.failure_threshold:
                if self._opened_at is None or self._trial_in_flight:
                    logger.warning(
                        "llm circuit opened after %d consecutive failures",
                        self._failures,
                    )
                self._opened_at = now
            self._trial_in_flight = False


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def circuit_breaker_for(config: LLMConfig) -> CircuitBreaker:
    """The breaker shared by every client of `config.base_url` in this process."""
    key = config.base_url.rstrip("/")
    with _breakers_lock:
        breaker = _breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(
                config.breaker_failure_threshold, config.breaker_reset_seconds
            )
            _breakers[key] = breaker
        return breaker


def reset_circuit_breakers() -> None:
    """Forget every breaker's state (for tests and after reconfiguration)."""
    with _breakers_lock:
        _breakers.clear()


# --- Parsing helpers ---------------------------------------------------------


def parse_retry_after(
    value: str | None, *, now: datetime | None = None
) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in a model's answer; a ```json fence around it is fine."""
    stripped = _THINKING.sub("", text.strip()).strip()
    fenced = _FENCED_JSON.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    try:
        value = json.loads(stripped)
    except (ValueError, RecursionError) as error:
        raise MalformedResponse(
            "The model's answer is not valid JSON.", raw_text=text
        ) from error
    if not isinstance(value, dict):
        raise MalformedResponse(
            "The model's answer is not a JSON object.", raw_text=text
        )
    return value


# --- The client --------------------------------------------------------------

LLM_REQUESTS = Counter(
    "llm_requests",
    "Calls to the LLM provider by model and outcome "
    "(success, an HTTP status, timeout or connection).",
    ["model", "outcome"],
)
LLM_REQUEST_DURATION = Histogram(
    "llm_request_duration_seconds",
    "Duration of one call to the LLM provider.",
    ["model"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
)


@dataclass
class _Exchange:
    """One HTTP round trip, classified."""

    status: int | None = None
    body: bytes = b""
    failure: str | None = None
    retry_after: float | None = None
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        if self.failure in ("timeout", "connection"):
            return True
        return self.status is not None and (
            self.status in _RETRYABLE_STATUSES or self.status >= 500
        )


@dataclass
class _Counter:
    attempts: int = 0


class _FatalForModel(LLMPermanentError):
    """Permanent for the model in hand; the next model may still work."""


class _ResponseTooLarge(Exception):
    pass


class LLMClient:
    """Chat (JSON answers) and embeddings over an OpenAI-compatible API."""

    def __init__(
        self,
        config: LLMConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._clock = clock
        self._random = rng or random.Random()
        self._breaker = circuit_breaker_for(config)
        self._base_url = config.base_url.rstrip("/")
        self._json_mode_refused: set[str] = set()
        self._lock = threading.Lock()
        headers = {"Accept": "application/json"}
        if config.api_key:
            headers["Authorization"] = "Bearer " + config.api_key
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(config.timeout_seconds),
            headers=headers,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    # -- Chat --

    def chat_json(
        self,
        system: str,
        user: str,
        *,
        extra_messages: Sequence[tuple[str, str]] = (),
    ) -> LLMResponse:
        """Ask for a JSON object, trying each configured model in turn.

        `extra_messages` are (role, content) pairs appended after the user
        message, e.g. a previous answer and a request to repair it.
        """
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            *({"role": role, "content": content} for role, content in extra_messages),
        ]
        started = self._clock()
        counter = _Counter()
        last_transient: LLMTransientError | None = None
        last_permanent: LLMPermanentError | None = None
        for model in self.config.models:

            def payload(json_mode: bool, model: str = model) -> dict[str, Any]:
                body: dict[str, Any] = {
                    "model": model,
                    "messages": messages,
                    "temperature": 0,
                }
                if json_mode:
                    body["response_format"] = {"type": "json_object"}
                return body

            try:
                body = self._call_model(
                    "/chat/completions", model, payload, counter, json_capable=True
                )
            except CircuitOpenError:
                raise
            except _FatalForModel as error:
                last_permanent = error
                continue
            except LLMTransientError as error:
                last_transient = error
                continue
            text, prompt_tokens, completion_tokens = _chat_answer(body, model)
            try:
                content = parse_json_object(text)
            except MalformedResponse as error:
                logger.warning("llm answer from model=%s is not a JSON object", model)
                raise MalformedResponse(
                    error.message,
                    raw_text=text,
                    model=model,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                ) from error
            return LLMResponse(
                content=content,
                raw_text=text,
                model=model,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                duration_ms=_elapsed_ms(started, self._clock()),
                attempts=counter.attempts,
            )
        # A model that failed transiently may work later; a rejection will not.
        if last_transient is not None:
            raise LLMTransientError(
                "The language model service is unavailable; every configured model "
                "failed.",
                retry_after=last_transient.retry_after,
            )
        assert last_permanent is not None
        raise LLMPermanentError(last_permanent.message)

    # -- Embeddings --

    def embed(self, texts: list[str], model: str) -> list[list[float]]:
        """One embedding vector per text, in order."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBEDDING_BATCH_SIZE):
            batch = texts[start : start + EMBEDDING_BATCH_SIZE]

            def payload(json_mode: bool, batch: list[str] = batch) -> dict[str, Any]:
                return {"model": model, "input": batch}

            try:
                body = self._call_model(
                    "/embeddings", model, payload, _Counter(), json_capable=False
                )
            except _FatalForModel as error:
                raise LLMPermanentError(error.message) from error
            vectors.extend(_embedding_vectors(body, len(batch), model))
        return vectors

    # -- One model, with retries --

    def _call_model(
        self,
        path: str,
        model: str,
        payload: Callable[[bool], dict[str, Any]],
        counter: _Counter,
        *,
        json_capable: bool,
    ) -> bytes:
        with self._lock:
            json_mode = (
                json_capable
                and self.config.json_mode
                and model not in self._json_mode_refused
            )
        retry = 0
        while True:
            wait = self._breaker.acquire(self._clock())
            if wait is not None:
                logger.warning("llm circuit open; call to model=%s refused", model)
                raise CircuitOpenError(
                    "The language model service is failing; calls are paused briefly.",
                    retry_after=wait,
                )
            counter.attempts += 1
            exchange = self._exchange(path, payload(json_mode))
            self._log(model, exchange, counter.attempts)
            if exchange.ok:
                self._breaker.record_success()
                return exchange.body
            if exchange.transient:
                self._breaker.record_failure(self._clock())
                if retry >= self.config.max_retries:
                    raise LLMTransientError(
                        "The language model service did not answer.",
                        retry_after=exchange.retry_after,
                    )
                self._sleep(self._delay(retry, exchange.retry_after))
                retry += 1
                continue
            # The provider is up and answered; it just refused this request.
            self._breaker.record_success()
            if exchange.failure == "too_large":
                raise MalformedResponse(
                    "The model provider's answer was too large.", model=model
                )
            if json_mode and exchange.status == 400 and _mentions_json_mode(exchange):
                logger.info("model=%s does not support json mode; retrying", model)
                with self._lock:
                    self._json_mode_refused.add(model)
                json_mode = False
                continue
            if exchange.failure == "invalid_url":
                raise LLMPermanentError("The language model service URL is invalid.")
            if exchange.status in _FATAL_STATUSES:
                raise LLMPermanentError(
                    "The language model service rejected our credentials."
                )
            raise _FatalForModel(
                f"The language model service rejected the request for model {model} "
                f"(HTTP {exchange.status})."
            )

    def _delay(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.config.backoff_max * 4)
        ceiling = min(self.config.backoff_max, self.config.backoff_base * 2**retry)
        return self._random.uniform(0, ceiling)

    def _exchange(self, path: str, payload: dict[str, Any]) -> _Exchange:
        started = self._clock()
        exchange = _Exchange()
        try:
            with self._http.stream(
                "POST", self._base_url + path, json=payload
            ) as reply:
                exchange.status = reply.status_code
                exchange.retry_after = parse_retry_after(
                    reply.headers.get("Retry-After")
                )
                exchange.body = _read_limited(reply.iter_bytes())
        except httpx.TimeoutException:
            exchange.failure = "timeout"
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            exchange.status = None
            exchange.failure = "invalid_url"
        except httpx.RequestError:
            exchange.failure = "connection"
        except _ResponseTooLarge:
            exchange.failure = "too_large"
        if exchange.failure in ("timeout", "connection"):
            exchange.status = None
        exchange.duration_ms = _elapsed_ms(started, self._clock())
        return exchange

    def _log(self, model: str, exchange: _Exchange, attempt: int) -> None:
        outcome = exchange.status if exchange.status is not None else exchange.failure
        LLM_REQUESTS.labels(
            model=model,
            outcome="success" if exchange.ok else f"{exchange.failure or outcome}",
        ).inc()
        LLM_REQUEST_DURATION.labels(model=model).observe(exchange.duration_ms / 1000)
        if exchange.ok:
            logger.info(
                "llm call model=%s status=%s attempt=%d duration_ms=%d",
                model,
                outcome,
                attempt,
                exchange.duration_ms,
            )
        else:
            logger.warning(
                "llm call failed model=%s status=%s attempt=%d duration_ms=%d",
                model,
                outcome,
                attempt,
                exchange.duration_ms,
            )


def _read_limited(chunks: Iterator[bytes]) -> bytes:
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) > MAX_RESPONSE_BYTES:
            raise _ResponseTooLarge()
    return bytes(buffer)


def _mentions_json_mode(exchange: _Exchange) -> bool:
    return b"response_format" in exchange.body.lower()


def _elapsed_ms(started: float, now: float) -> int:
    return max(0, round((now - started) * 1000))


def _decode_envelope(body: bytes, model: str) -> dict[str, Any]:
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise MalformedResponse(
            "The model provider returned a response that is not JSON.", model=model
        ) from error
    if not isinstance(envelope, dict):
        raise MalformedResponse(
            "The model provider's response is malformed.", model=model
        )
    return envelope


def _chat_answer(body: bytes, model: str) -> tuple[str, int, int]:
    """The assistant's text and the token usage from a chat completion."""
    envelope = _decode_envelope(body, model)
    usage = envelope.get("usage")
    prompt_tokens = completion_tokens = 0
    if isinstance(usage, dict):
        prompt_tokens = _as_count(usage.get("prompt_tokens"))
        completion_tokens = _as_count(usage.get("completion_tokens"))
    content: Any = None
    choices = envelope.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict):
            content = message.get("content")
    if isinstance(content, list):
        # Some gateways return content as a list of typed parts.
        content = "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    if not isinstance(content, str) or not content.strip():
        raise MalformedResponse(
            "The model's answer is empty.",
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
    return content, prompt_tokens, completion_tokens


def _as_count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _embedding_vectors(body: bytes, expected: int, model: str) -> list[list[float]]:
    envelope = _decode_envelope(body, model)
    data = envelope.get("data")
    invalid = MalformedResponse("The embeddings response is malformed.", model=model)
    if not isinstance(data, list) or len(data) != expected:
        raise invalid
    indexed: list[tuple[int, list[float]]] = []
    for position, item in enumerate(data):
        if not isinstance(item, dict):
            raise invalid
        vector = item.get("embedding")
        index = item.get("index", position)
        if (
            not isinstance(vector, list)
            or not vector
            or not isinstance(index, int)
            or not all(
                isinstance(x, int | float) and not isinstance(x, bool) for x in vector
            )
        ):
            raise invalid
        indexed.append((index, [float(x) for x in vector]))
    indexed.sort(key=lambda pair: pair[0])
    if [index for index, _ in indexed] != list(range(expected)):
        raise invalid
    dimensions = {len(vector) for _, vector in indexed}
    if len(dimensions) != 1:
        raise invalid
    return [vector for _, vector in indexed]
