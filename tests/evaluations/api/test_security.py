"""Security headers, CORS, CSRF on session pages, and the public API docs."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from tests.evaluations.api.conftest import Caller

pytestmark = pytest.mark.django_db

RESULT = "/v1/result/00000000-0000-4000-8000-000000000000"


def test_security_headers_on_api_responses(caller: Caller) -> None:
    for response in (caller.client.get(RESULT), APIClient().get(RESULT)):
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["X-Frame-Options"] == "DENY"
        assert response["Referrer-Policy"] == "same-origin"
        assert response.has_header("X-Request-Id")


def test_hsts_only_over_https(settings: Any, caller: Caller) -> None:
    settings.SECURE_HSTS_SECONDS = 3600
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {caller.token}")
    assert client.get(RESULT, secure=True)["Strict-Transport-Security"] == (
        "max-age=3600"
    )
    assert not client.get(RESULT).has_header("Strict-Transport-Security")


def test_cors_allows_configured_origins_only(settings: Any, caller: Caller) -> None:
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    preflight = {
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST",
        "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "authorization, idempotency-key",
    }
    allowed = APIClient().options(
        "/v1/evaluate", HTTP_ORIGIN="https://app.example.com", **preflight
    )
    assert allowed.status_code == 200
    assert allowed["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "idempotency-key" in allowed["Access-Control-Allow-Headers"]

    refused = APIClient().options(
        "/v1/evaluate", HTTP_ORIGIN="https://evil.example.net", **preflight
    )
    assert not refused.has_header("Access-Control-Allow-Origin")

    actual = caller.client.get(RESULT, HTTP_ORIGIN="https://app.example.com")
    assert actual["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "ETag" in actual["Access-Control-Expose-Headers"]
    other = caller.client.get(RESULT, HTTP_ORIGIN="https://evil.example.net")
    assert not other.has_header("Access-Control-Allow-Origin")


def test_cors_is_limited_to_the_api(settings: Any) -> None:
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    response = Client().get("/admin/login/", HTTP_ORIGIN="https://app.example.com")
    assert not response.has_header("Access-Control-Allow-Origin")


def test_the_admin_login_still_enforces_csrf() -> None:
    user = get_user_model().objects.create_superuser("boss", password="s3cret-pass!")
    client = Client(enforce_csrf_checks=True)
    credentials = {"username": user.username, "password": "s3cret-pass!"}

    refused = client.post("/admin/login/", credentials)
    assert refused.status_code == 403

    client.get("/admin/login/")
    token = client.cookies["csrftoken"].value
    accepted = client.post(
        "/admin/login/", {**credentials, "csrfmiddlewaretoken": token}
    )
    assert accepted.status_code == 302


def test_the_api_does_not_accept_a_session_login(caller: Caller) -> None:
    admin = get_user_model().objects.create_superuser("root", password="pw-12345!")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    response = client.get(RESULT)
    assert response.status_code == 401


def test_the_schema_is_public_and_describes_the_api() -> None:
    response = APIClient().get("/v1/schema")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert set(paths) == {"/v1/upload", "/v1/evaluate", "/v1/result/{id}"}
    responses = {
        "/v1/upload": {"201", "400", "401", "413", "415", "429", "500"},
        "/v1/evaluate": {
            "200",
            "202",
            "400",
            "401",
            "404",
            "409",
            "413",
            "415",
            "429",
            "500",
        },
        "/v1/result/{id}": {"200", "304", "401", "404", "429", "500"},
    }
    for path, statuses in responses.items():
        (operation,) = paths[path].values()
        assert set(operation["responses"]) == statuses
        assert operation["security"] == [{"tokenAuth": []}, {"bearerAuth": []}]
    schemes = schema["components"]["securitySchemes"]
    assert schemes["tokenAuth"]["in"] == "header"
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert "ErrorEnvelope" in schema["components"]["schemas"]


def test_the_schema_is_valid_openapi_without_generator_warnings(tmp_path: Any) -> None:
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", tmp_path / "api.yaml"
    )
    assert "/v1/result/{id}" in (tmp_path / "api.yaml").read_text()


def test_the_schema_ignores_a_stale_token() -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token stale")
    assert client.get("/v1/schema", HTTP_ACCEPT="application/json").status_code == 200


def test_the_docs_page_is_public_and_served_locally() -> None:
    response = Client().get("/v1/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert "drf_spectacular_sidecar/swagger-ui-dist" in page
    assert "cdn.jsdelivr.net" not in page
