"""The wire format of a job: a small JSON value plus headers.

Key: the job id, so every message about one job lands on one partition.
Value: the task's path, its JSON arguments, attempt and timestamps.
Headers repeat what tools and dashboards want without parsing the value.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

HEADER_JOB_ID = "job-id"
HEADER_TASK = "task"
HEADER_ATTEMPT = "attempt"
HEADER_REQUEST_ID = "request-id"
HEADER_ENQUEUED_AT = "enqueued-at"
HEADER_NOT_BEFORE = "not-before"
HEADER_ERROR_CODE = "error-code"
HEADER_ERROR_MESSAGE = "error-message"
HEADER_REPLAYED = "replayed"

MAX_ERROR_MESSAGE_BYTES = 1000


class MalformedMessage(ValueError):
    """A message that is not a job this layer wrote."""


@dataclass(frozen=True)
class JobMessage:
    job_id: str
    task_path: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    request_id: str = ""
    # Wall-clock seconds when the job was handed to the broker (after the
    # database commit): pickup latency is measured from here.
    enqueued_at: float = 0.0
    not_before: float = 0.0
    replayed: bool = False
    error_code: str = ""
    error_message: str = ""

    def encode_value(self) -> bytes:
        return json.dumps(
            {
                "id": self.job_id,
                "task": self.task_path,
                "args": self.args,
                "kwargs": self.kwargs,
                "attempt": self.attempt,
                "request_id": self.request_id,
                "enqueued_at": self.enqueued_at,
            },
            separators=(",", ":"),
        ).encode()

    def headers(self) -> list[tuple[str, str | bytes | None]]:
        headers: list[tuple[str, str | bytes | None]] = [
            (HEADER_JOB_ID, self.job_id.encode()),
            (HEADER_TASK, self.task_path.encode()),
            (HEADER_ATTEMPT, str(self.attempt).encode()),
            (HEADER_REQUEST_ID, self.request_id.encode()),
            (HEADER_ENQUEUED_AT, repr(self.enqueued_at).encode()),
        ]
        if self.not_before:
            headers.append((HEADER_NOT_BEFORE, repr(self.not_before).encode()))
        if self.replayed:
            headers.append((HEADER_REPLAYED, b"1"))
        if self.error_code:
            headers.append((HEADER_ERROR_CODE, self.error_code.encode()))
            headers.append(
                (
                    HEADER_ERROR_MESSAGE,
                    self.error_message.encode()[:MAX_ERROR_MESSAGE_BYTES],
                )
            )
        return headers

    def stamped(self) -> JobMessage:
        """This message as handed to the broker now."""
        return replace(self, enqueued_at=time.time())

    @classmethod
    def decode(cls, value: bytes | None, headers: Any) -> JobMessage:
        try:
            body = json.loads(value or b"")
            header_map = {
                k: v.decode() if isinstance(v, bytes) else v
                for k, v in (headers or [])
                if v is not None
            }
            return cls(
                job_id=str(body["id"]),
                task_path=str(body["task"]),
                args=list(body.get("args", [])),
                kwargs=dict(body.get("kwargs", {})),
                attempt=int(header_map.get(HEADER_ATTEMPT, body.get("attempt", 1))),
                request_id=str(body.get("request_id", "")),
                enqueued_at=float(
                    header_map.get(HEADER_ENQUEUED_AT, body.get("enqueued_at", 0.0))
                ),
                not_before=float(header_map.get(HEADER_NOT_BEFORE, 0.0)),
                replayed=header_map.get(HEADER_REPLAYED) == "1",
                error_code=header_map.get(HEADER_ERROR_CODE, ""),
                error_message=header_map.get(HEADER_ERROR_MESSAGE, ""),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MalformedMessage(str(exc)) from exc
