"""Every error in the one envelope: routing, methods, bodies, auth, limits, 500s."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from rest_framework.test import APIClient

from evaluations import api
from tests.evaluations.api.conftest import Caller, assert_envelope

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("post", "/v1/upload"),
    ("post", "/v1/evaluate"),
    ("get", "/v1/result/00000000-0000-4000-8000-000000000000"),
]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/",
        "/v1/nothing-here",
        "/v1/upload/",
        "/v1/result/",
        "/v1/result/a/b",
        "/v1/result/..%2F..%2Fetc%2Fpasswd",
        "/v1/../etc/passwd",
        "/v1/%00",
    ],
)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_paths_under_v1_are_enveloped_404s(
    caller: Caller, anonymous: APIClient, path: str, method: str
) -> None:
    for client in (caller.client, anonymous):
        response = getattr(client, method)(path)
        assert_envelope(response, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/v1/upload"), ("put", "/v1/evaluate"), ("delete", "/v1/evaluate")],
)
def test_wrong_methods_are_enveloped_405s(
    caller: Caller, method: str, path: str
) -> None:
    response = getattr(caller.client, method)(path)
    assert_envelope(response, 405, "INVALID_ARGUMENT")
    assert "POST" in response["Allow"]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_missing_credentials_are_unauthenticated(
    anonymous: APIClient, method: str, path: str
) -> None:
    response = getattr(anonymous, method)(path)
    assert_envelope(response, 401, "UNAUTHENTICATED")
    assert "Token" in response["WWW-Authenticate"]
    assert "Bearer" in response["WWW-Authenticate"]


@pytest.mark.parametrize(
    "header",
    [
        "Token 0123456789abcdef0123456789abcdef01234567",
        "Bearer wrong",
        "Token",
        "Token a b",
        "Bearer ' OR 1=1--",
        "Token " + "a" * 500,
        "token \u00e9\u00e9",
        "Basic dXNlcjpwYXNz",
    ],
)
@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_bad_credentials_are_unauthenticated(
    db: None, header: str, method: str, path: str
) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = getattr(client, method)(path)
    assert_envelope(response, 401, "UNAUTHENTICATED")
    assert response.has_header("WWW-Authenticate")


def test_an_inactive_users_token_is_refused(caller: Caller) -> None:
    caller.user.is_active = False
    caller.user.save()
    response = caller.evaluate({})
    assert_envelope(response, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"cv_id": ', "application/json"),
        (b"{'single': 'quotes'}", "application/json"),
        (b'{"cv_id": "\xff\xfe"}', "application/json"),  # invalid UTF-8
        (b"\xff\xfe\x00{", "application/json"),
        (b'{"a": NaN}', "application/json"),
    ],
)
def test_malformed_json_is_invalid(
    caller: Caller, body: bytes, content_type: str
) -> None:
    response = caller.client.post("/v1/evaluate", body, content_type=content_type)
    assert_envelope(response, 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    "body",
    ["[" * 100_000 + "]" * 100_000, '{"a":' * 30_000 + "1" + "}" * 30_000],
    ids=["arrays", "objects"],
)
def test_deeply_nested_json_is_invalid(caller: Caller, body: str) -> None:
    response = caller.client.post("/v1/evaluate", body, content_type="application/json")
    assert_envelope(response, 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ],
)
def test_unsupported_content_types_are_refused(
    caller: Caller, content_type: str
) -> None:
    response = caller.client.post("/v1/evaluate", b"cv_id=1", content_type=content_type)
    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_a_json_body_over_the_limit_is_too_large(
    caller: Caller, settings: Any, evaluate_body: dict
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    body = json.dumps({**evaluate_body, "padding": "x" * (64 * 1024)})
    response = caller.client.post("/v1/evaluate", body, content_type="application/json")
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")


def test_the_default_json_limit_applies(caller: Caller, evaluate_body: dict) -> None:
    body = json.dumps({**evaluate_body, "job_description": "x" * 300_000})
    response = caller.client.post("/v1/evaluate", body, content_type="application/json")
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")


def test_unexpected_errors_are_internal_and_logged_with_the_request_id(
    caller: Caller,
    evaluate_body: dict,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(**kwargs: Any) -> None:
        raise RuntimeError("connection to /var/run/secret.sock failed: SELECT 1")

    monkeypatch.setattr(api, "evaluation_create", explode)
    with caplog.at_level(logging.ERROR, logger="evaluations.errors"):
        response = caller.evaluate(evaluate_body, **{"X-Request-Id": "req-500-test"})

    error = assert_envelope(response, 500, "INTERNAL")
    assert error["details"] == {"request_id": "req-500-test"}
    assert b"secret.sock" not in response.content
    assert b"RuntimeError" not in response.content
    assert response["X-Request-Id"] == "req-500-test"
    (record,) = [r for r in caplog.records if r.name == "evaluations.errors"]
    assert "req-500-test" in record.getMessage()
    assert record.exc_info is not None


def test_an_unexpected_upload_error_is_internal(
    caller: Caller, valid_files: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(**kwargs: Any) -> None:
        raise OSError("disk full at /srv/media")

    monkeypatch.setattr(api, "upload_pair_create", explode)
    response = caller.upload_files(**valid_files)
    assert_envelope(response, 500, "INTERNAL")
    assert b"/srv/media" not in response.content


# --- Rate limits ----------------------------------------------------------------


def _rates(settings: Any, **rates: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "1000/min", "ip": "1000/min", **rates},
    }


def test_a_token_over_its_rate_is_limited_with_retry_after(
    caller: Caller, other_caller: Caller, settings: Any
) -> None:
    _rates(settings, token="3/min")
    path = "/v1/result/00000000-0000-4000-8000-000000000000"
    statuses = [caller.client.get(path).status_code for _ in range(3)]
    assert statuses == [404, 404, 404]

    response = caller.client.get(path)
    error = assert_envelope(response, 429, "RATE_LIMITED")
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    assert error["details"]["retry_after_seconds"] == retry_after
    # Another token from the same address is not affected.
    assert other_caller.client.get(path).status_code == 404


def test_an_address_over_its_rate_is_limited_across_tokens(
    caller: Caller, other_caller: Caller, settings: Any
) -> None:
    _rates(settings, ip="4/min")
    path = "/v1/result/00000000-0000-4000-8000-000000000000"
    for client in (caller.client, other_caller.client, caller.client):
        assert client.get(path).status_code == 404
    assert other_caller.client.get(path).status_code == 404
    response = caller.client.get(path)
    assert_envelope(response, 429, "RATE_LIMITED")
    assert response.has_header("Retry-After")
    # Another address still gets through.
    response = other_caller.client.get(path, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 404


def test_a_forged_forwarded_for_does_not_dodge_the_address_limit(
    caller: Caller, settings: Any
) -> None:
    _rates(settings, ip="2/min")
    path = "/v1/result/00000000-0000-4000-8000-000000000000"
    statuses = [
        caller.client.get(path, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
        for i in range(3)
    ]
    assert statuses == [404, 404, 429]


# --- Django-level errors ------------------------------------------------------------


def test_unknown_api_paths_are_enveloped_in_debug_mode_too(
    caller: Caller, settings: Any
) -> None:
    settings.DEBUG = True
    assert_envelope(caller.client.get("/v1/nowhere"), 404, "NOT_FOUND")


def test_a_disallowed_host_is_an_enveloped_400(caller: Caller) -> None:
    response = caller.client.get(
        "/v1/result/00000000-0000-4000-8000-000000000000", HTTP_HOST="evil.example"
    )
    assert_envelope(response, 400, "INVALID_ARGUMENT")


def test_django_error_views_envelope_api_paths_only(rf: Any) -> None:
    from django.core.exceptions import PermissionDenied, SuspiciousOperation
    from django.http import Http404

    from evaluations import errors

    api_request = rf.get("/v1/anything")
    api_request.request_id = "req-django-500"
    assert_envelope(
        errors.bad_request(api_request, SuspiciousOperation()), 400, "INVALID_ARGUMENT"
    )
    assert_envelope(
        errors.permission_denied(api_request, PermissionDenied()),
        403,
        "PERMISSION_DENIED",
    )
    assert_envelope(errors.page_not_found(api_request, Http404()), 404, "NOT_FOUND")
    error = assert_envelope(errors.server_error(api_request), 500, "INTERNAL")
    assert error["details"] == {"request_id": "req-django-500"}

    admin_request = rf.get("/admin/anything")
    for response in (
        errors.page_not_found(admin_request, Http404()),
        errors.server_error(admin_request),
    ):
        assert response["Content-Type"].startswith("text/html")
