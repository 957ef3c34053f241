from __future__ import annotations

import pytest
from django.test import Client


def test_healthz_needs_no_dependencies(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["X-Request-Id"]


@pytest.mark.django_db
def test_readyz_checks_database_and_kafka(client: Client) -> None:
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["kafka"]["ok"] is True


@pytest.mark.django_db
def test_readyz_is_503_with_details_when_kafka_is_down(
    client: Client, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.KAFKA_BROKERS = ["127.0.0.1:1"]  # nothing listens there
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["kafka"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["kafka"]["duration_ms"] < 5000


def test_request_id_is_echoed_when_valid(client: Client) -> None:
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-Id"] == "abc-123"
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\n<script>")
    assert response["X-Request-Id"] != "bad id\n<script>"
    assert len(response["X-Request-Id"]) == 32
