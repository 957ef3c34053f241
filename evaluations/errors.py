"""The API's error envelope: `{"error": {"code", "message", "details"}}`.

Every error a client can see goes through `api_exception_handler`, so the
codes and shapes are decided in one place and never leak internals.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An error with an envelope code; raise it from services and views."""

    code = "INVALID_ARGUMENT"
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The request is invalid."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        super().__init__(message or self.default_detail)
        self.message = message or str(self.default_detail)
        self.details = details


class InvalidArgument(ApiError):
    pass


class NotFound(ApiError):
    code = "NOT_FOUND"
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = "Not found."


class Conflict(ApiError):
    code = "CONFLICT"
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with an earlier one."


class PayloadTooLarge(ApiError):
    code = "PAYLOAD_TOO_LARGE"
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."


class UnsupportedMediaType(ApiError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_detail = "The file type is not supported."


class Unavailable(ApiError):
    code = "UNAVAILABLE"
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is temporarily unavailable."


_CODES_BY_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    406: "INVALID_ARGUMENT",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _validation_details(detail: Any) -> tuple[str, dict[str, Any]]:
    """Turn DRF's nested validation errors into a message and `details`."""
    if isinstance(detail, dict) and detail:
        field, errors = next(iter(detail.items()))
        first = errors[0] if isinstance(errors, list) and errors else errors
        if isinstance(first, dict):
            _, nested = _validation_details(first)
            first = next(iter(nested.get("errors", {}).values()), first)
        message = f"{field}: {first}" if field != "non_field_errors" else str(first)
        fields = {
            str(name): [str(e) for e in (errs if isinstance(errs, list) else [errs])]
            for name, errs in detail.items()
        }
        details: dict[str, Any] = {"errors": fields}
        if field != "non_field_errors":
            details["field"] = field
        return message, details
    if isinstance(detail, list) and detail:
        return str(detail[0]), {}
    return str(detail), {}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, Http404):
        exc = NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        request = context.get("request")
        logger.exception(
            "unhandled error in %s",
            getattr(request, "path", "?"),
            exc_info=exc,
        )
        return Response(
            envelope("INTERNAL", "An internal error occurred."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    if isinstance(exc, ApiError):
        response.data = envelope(exc.code, exc.message, exc.details)
    elif isinstance(exc, exceptions.ValidationError):
        message, details = _validation_details(exc.detail)
        response.data = envelope("INVALID_ARGUMENT", message, details)
    elif isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1)
        response.data = envelope(
            "RATE_LIMITED",
            "Too many requests; retry later.",
            {"retry_after_seconds": wait},
        )
        response["Retry-After"] = str(max(wait, 1))
    else:
        code = _CODES_BY_STATUS.get(response.status_code, "INVALID_ARGUMENT")
        detail = getattr(exc, "detail", "")
        message = str(detail) if detail else "The request failed."
        response.data = envelope(code, message)
    return response


def json_error(request: HttpRequest, status_code: int, message: str) -> JsonResponse:
    """An envelope response for Django-level handlers (404/500 outside DRF)."""
    code = _CODES_BY_STATUS.get(status_code, "INTERNAL")
    return JsonResponse(envelope(code, message), status=status_code)
