"""Errors the evaluation services raise, each with an API envelope code.

Services know nothing about HTTP; the API's exception handler turns these
into responses, and the admin shows their messages next to form fields.
"""

from __future__ import annotations


class ServiceError(Exception):
    code = "INVALID_ARGUMENT"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(ServiceError):
    code = "INVALID_ARGUMENT"


class NotFoundError(ServiceError):
    code = "NOT_FOUND"


class ConflictError(ServiceError):
    code = "CONFLICT"


class TooLargeError(ServiceError):
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedTypeError(ServiceError):
    code = "UNSUPPORTED_MEDIA_TYPE"
