"""The API's error envelope: `{"error": {"code", "message", "details"}}`.

Every error a client can see goes through `api_exception_handler`, so the
codes and shapes are decided in one place and never leak internals.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    UnreadablePostError,
)
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from evaluations.exceptions import ServiceError

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An error with an envelope code; raise it from services and views."""

    code = "INVALID_ARGUMENT"
    status_code: int = status.HTTP_400_BAD_REQUEST
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


# Every code a client can see; the OpenAPI schema lists them as an enum.
ERROR_CODES = (
    "INVALID_ARGUMENT",
    "UNAUTHENTICATED",
    "PERMISSION_DENIED",
    "NOT_FOUND",
    "CONFLICT",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "RATE_LIMITED",
    "INTERNAL",
    "UNAVAILABLE",
)

API_PATH_PREFIX = "/v1/"

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


_API_ERRORS_BY_CODE: dict[str, type[ApiError]] = {
    "INVALID_ARGUMENT": InvalidArgument,
    "NOT_FOUND": NotFound,
    "CONFLICT": Conflict,
    "PAYLOAD_TOO_LARGE": PayloadTooLarge,
    "UNSUPPORTED_MEDIA_TYPE": UnsupportedMediaType,
    "UNAVAILABLE": Unavailable,
}


def _from_service_error(exc: ServiceError) -> ApiError:
    details = {"field": exc.field} if exc.field else {}
    return _API_ERRORS_BY_CODE.get(exc.code, InvalidArgument)(exc.message, **details)


def _as_api_exception(exc: Exception) -> Exception:
    """Django's and the services' exceptions as the API errors they stand for."""
    if isinstance(exc, ServiceError):
        return _from_service_error(exc)
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return PayloadTooLarge("The request has too many fields or files.")
    if isinstance(exc, SuspiciousOperation):
        return InvalidArgument("The request is malformed.")
    if isinstance(exc, UnreadablePostError):
        return InvalidArgument("The request body could not be read completely.")
    if isinstance(exc, Http404):
        return NotFound()
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    return exc


def _request_id(request: Any) -> str:
    return str(getattr(request, "request_id", "") or "-")


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = _as_api_exception(exc)
    response = exception_handler(exc, context)
    if response is None:
        request = context.get("request")
        request_id = _request_id(request)
        logger.error(
            "unhandled %s in %s %s (request %s)",
            type(exc).__name__,
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
            request_id,
            exc_info=exc,
        )
        set_rollback()
        return Response(
            envelope(
                "INTERNAL", "An internal error occurred.", {"request_id": request_id}
            ),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    if isinstance(exc, ApiError):
        response.data = envelope(exc.code, exc.message, exc.details)
    elif isinstance(exc, exceptions.ValidationError):
        message, details = _validation_details(exc.detail)
        response.data = envelope("INVALID_ARGUMENT", message, details)
    elif isinstance(exc, exceptions.Throttled):
        wait = int(getattr(exc, "wait", None) or 1)
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


def json_error(
    request: HttpRequest,
    status_code: int,
    message: str,
    details: dict[str, Any] | None = None,
) -> JsonResponse:
    """An envelope response for Django-level handlers (404/500 outside DRF)."""
    code = _CODES_BY_STATUS.get(status_code, "INTERNAL")
    return JsonResponse(envelope(code, message, details), status=status_code)


def _is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PATH_PREFIX)


def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any path under /v1/ that names no endpoint, whatever the method."""
    return json_error(request, status.HTTP_404_NOT_FOUND, "Not found.")


# Django's error views (`handler400` ... in the root URLconf): the envelope for
# API paths, Django's own pages everywhere else (the admin).


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api_request(request):
        return json_error(request, 400, "The request is malformed.")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api_request(request):
        return json_error(request, 403, "You do not have permission to do this.")
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api_request(request):
        return json_error(request, 404, "Not found.")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api_request(request):
        return json_error(
            request,
            500,
            "An internal error occurred.",
            {"request_id": _request_id(request)},
        )
    return defaults.server_error(request)
