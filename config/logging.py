"""Log context (request id, job id) and the JSON log format.

The request id and job id live in context variables so that every log line
written while handling a request or running a job carries them, whatever
module writes it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "request_id", default="-"
)
job_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("job_id", default="-")


@contextmanager
def log_context(
    *, request_id: str | None = None, job_id: str | None = None
) -> Iterator[None]:
    tokens = []
    if request_id is not None:
        tokens.append((request_id_var, request_id_var.set(request_id)))
    if job_id is not None:
        tokens.append((job_id_var, job_id_var.set(job_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.job_id = job_id_var.get()
        return True


_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__
) | {"message", "asctime", "request_id", "job_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the log context and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id_var.get()),
            "job_id": getattr(record, "job_id", job_id_var.get()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            # A filter may have set (redacted) exc_text already, as the
            # standard formatter also caches it there.
            payload["exception"] = record.exc_text or self.formatException(
                record.exc_info
            )
        return json.dumps(payload, default=str)


REDACTED = "***"
_SENSITIVE_KEY = re.compile(
    r"(?i)(password|passwd|secret|token|api[_-]?key|authorization|credentials?|"
    r"cookie|session[_-]?id)$"
)
_REDACTIONS: tuple[
    tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...
] = (
    # Authorization: Bearer abc / "authorization": "Token abc"
    (
        re.compile(
            r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
            r"(?:(bearer|token|basic)\s+)?[^\s\"',;}]+"
        ),
        lambda match: (
            match.group(1) + (f"{match.group(2)} " if match.group(2) else "") + REDACTED
        ),
    ),
    # password=..., "api_key": "...", SECRET_KEY: ... (the key ends the name,
    # so counts such as prompt_tokens=12 stay readable)
    (
        re.compile(
            r"(?i)\b([\w-]*(?:password|passwd|secret|secret[_-]?key|token|"
            r"api[_-]?key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]+"
        ),
        r"\1" + REDACTED,
    ),
    # Credentials in URLs: postgres://user:password@host/db
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@"),
        r"\1" + REDACTED + "@",
    ),
    # Bare schemes followed by a key: "Bearer abc123..."
    (
        re.compile(r"\b(Bearer|Token)\s+[A-Za-z0-9._~+/=-]{16,}"),
        r"\1 " + REDACTED,
    ),
    # Vendor API keys (OpenAI-style "sk-...").
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "sk-" + REDACTED),
)


def redact(text: str) -> str:
    """`text` with credentials masked: auth headers, key=value secrets, URLs."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(key: str, value: object) -> object:
    if _SENSITIVE_KEY.search(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    return value


class RedactingFilter(logging.Filter):
    """Masks secrets in the message, in `extra` fields and in tracebacks.

    The message is rendered here (args merged in) so that a secret passed as
    an argument is caught too. Personal data is kept out of logs by not logging
    it in the first place; this filter is the safety net for credentials.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg, record.args = redact(message), ()
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                setattr(record, key, _redact_value(key, value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
