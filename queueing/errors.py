"""How the task layer tells a failure worth retrying from a final one."""

from __future__ import annotations

from django.db import InterfaceError, OperationalError


class TaskFailure(Exception):
    """Base for errors a task raises on purpose; `code` is a short label."""

    code = "task_failed"
    transient = False

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        if code is not None:
            self.code = code


class TransientError(TaskFailure):
    """Retry later: the same work may succeed (a timeout, a 503, a lost lock)."""

    code = "transient_error"
    transient = True


class PermanentError(TaskFailure):
    """Do not retry: the same work will fail the same way."""

    code = "permanent_error"


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return bool(getattr(exc, "transient", False))


def error_code(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    if isinstance(exc, OperationalError | InterfaceError):
        return "database_unavailable"
    return "unhandled_" + type(exc).__name__.lower()
