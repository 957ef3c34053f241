"""Fixtures for the API tests: users with tokens, clients, uploaded documents."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evaluations.models import Upload
from tests.evaluations.api.documents import docx_bytes, pdf_bytes
from tests.evaluations.factories import UploadFactory, UserFactory


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Rate-limit counters live in the cache; each test starts with none."""
    cache.clear()


@dataclass
class Caller:
    user: AbstractUser
    token: str
    client: APIClient

    def upload_files(self, **files: tuple[str, bytes]) -> Any:
        data = {
            field: SimpleUploadedFile(name, content)
            for field, (name, content) in files.items()
        }
        return self.client.post("/v1/upload", data, format="multipart")

    def evaluate(self, body: Any, **headers: str) -> Any:
        return self.client.post("/v1/evaluate", body, format="json", headers=headers)

    def result(self, evaluation_id: object, **headers: str) -> Any:
        return self.client.get(f"/v1/result/{evaluation_id}", headers=headers)


def make_caller(*, superuser: bool = False, scheme: str = "Token") -> Caller:
    user = UserFactory(is_superuser=superuser, is_staff=superuser)
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {token.key}")
    return Caller(user=user, token=token.key, client=client)


@pytest.fixture
def caller(db: None) -> Caller:
    return make_caller()


@pytest.fixture
def other_caller(db: None) -> Caller:
    return make_caller()


@pytest.fixture
def admin_caller(db: None) -> Caller:
    return make_caller(superuser=True)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def uploads(caller: Caller) -> tuple[Upload, Upload]:
    """A CV and a project report owned by `caller`."""
    cv = UploadFactory(owner=caller.user, kind=Upload.Kind.CV)
    project = UploadFactory(owner=caller.user, kind=Upload.Kind.PROJECT)
    return cv, project


@pytest.fixture
def evaluate_body(uploads: tuple[Upload, Upload]) -> dict[str, str]:
    cv, project = uploads
    return {"cv_id": str(cv.id), "project_id": str(project.id)}


@pytest.fixture
def valid_files() -> dict[str, tuple[str, bytes]]:
    return {"cv": ("cv.pdf", pdf_bytes()), "project": ("report.docx", docx_bytes())}


def assert_envelope(
    response: Any, status: int, code: str, *, field: str | None = None
) -> dict[str, Any]:
    """The response is an error of this status and code, in the envelope."""
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    if field is not None:
        assert error["details"].get("field") == field, error
    for leak in ("Traceback", 'File "', "/work", "site-packages", "SELECT "):
        assert leak not in error["message"]
    return error


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Any) -> Callable[[], list[str]]:
    """Uploads go to a temporary MEDIA_ROOT; returns a lister of stored files."""
    settings.MEDIA_ROOT = tmp_path

    def stored() -> list[str]:
        return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.*"))

    return stored


@pytest.fixture
def direct_wsgi(db: None, settings: Any) -> Iterator[None]:
    """Call the WSGI app directly inside a database test.

    Requests that bypass Django's test client would close, when they end, the
    database connection holding the test's transaction; the test client
    suspends that clean-up in the same way. Rate limits are lifted: these tests
    are about the shape of responses, not about throttling.
    """
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "100000/min", "ip": "100000/min"},
    }
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
