"""The API with the real broker and real worker processes.

Upload real files, start an evaluation, and poll until a worker has finished
it; and settle concurrent duplicate requests in the database.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from evaluations import services
from evaluations.models import Evaluation, Upload
from tests.conftest import KafkaNames, wait_for
from tests.evaluations.api.conftest import Caller, make_caller
from tests.evaluations.api.documents import docx_bytes, pdf_bytes
from tests.evaluations.factories import UploadFactory

pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]


def test_upload_evaluate_and_poll_until_completed(
    kafka: KafkaNames, start_worker: Callable[..., subprocess.Popen]
) -> None:
    caller = make_caller()
    start_worker("--concurrency", "2", LLM_API_KEY="")

    uploaded = caller.upload_files(
        cv=("cv.pdf", pdf_bytes()), project=("report.docx", docx_bytes())
    )
    assert uploaded.status_code == 201, uploaded.content
    accepted = caller.evaluate(
        uploaded.json(), **{"Idempotency-Key": "e2e-1", "X-Request-Id": "e2e-req"}
    )
    assert accepted.status_code == 202, accepted.content
    evaluation_id = accepted.json()["id"]

    def finished() -> Any:
        response = caller.result(evaluation_id)
        assert response.status_code == 200
        body = response.json()
        return response if body["status"] in ("completed", "failed") else None

    response = wait_for(finished, timeout=60, interval=0.2)
    body = response.json()
    assert body["status"] == "completed", body
    assert set(body) == {"id", "status", "result"}
    result = body["result"]
    assert set(result) == {
        "cv_match_rate",
        "cv_feedback",
        "project_score",
        "project_feedback",
        "overall_summary",
        "breakdown",
    }
    assert isinstance(result["cv_match_rate"], float)
    assert 0 <= result["cv_match_rate"] <= 1
    assert isinstance(result["project_score"], float)
    assert 1 <= result["project_score"] <= 10
    for text in ("cv_feedback", "project_feedback", "overall_summary"):
        assert result[text].strip()
    breakdown = result["breakdown"]
    assert len(breakdown["cv"]) == 4
    assert len(breakdown["project"]) == 5
    for criterion in breakdown["cv"] + breakdown["project"]:
        assert 1 <= criterion["score"] <= 5
        assert criterion["rationale"]

    evaluation = Evaluation.objects.get(id=evaluation_id)
    assert evaluation.request_id == "e2e-req"
    assert evaluation.provenance["provider"] == "offline"
    # A finished result is stable: its ETag now answers with 304.
    again = caller.result(evaluation_id, **{"If-None-Match": response["ETag"]})
    assert again.status_code == 304


def test_concurrent_duplicates_create_exactly_one_job(
    kafka: KafkaNames, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests that all miss the key lookup are settled by the unique index."""
    caller = make_caller()
    cv = UploadFactory(owner=caller.user, kind=Upload.Kind.CV)
    project = UploadFactory(owner=caller.user, kind=Upload.Kind.PROJECT)
    body = {"cv_id": str(cv.id), "project_id": str(project.id)}
    clients = 8
    # Hold every request after its key lookup until all have looked, so that
    # all of them try to insert at once.
    all_looked = threading.Barrier(clients, timeout=30)
    owned_uploads = services._owned_uploads

    def racing_owned_uploads(**kwargs: Any) -> tuple[Upload, Upload]:
        all_looked.wait()
        return owned_uploads(**kwargs)

    monkeypatch.setattr(services, "_owned_uploads", racing_owned_uploads)

    def post(_: int) -> Any:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {caller.token}")
        try:
            return client.post(
                "/v1/evaluate", body, format="json", HTTP_IDEMPOTENCY_KEY="same-key"
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(clients) as pool:
        responses = list(pool.map(post, range(clients)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * (clients - 1) + [202], [r.content for r in responses]
    assert len({response.json()["id"] for response in responses}) == 1
    assert Evaluation.objects.filter(owner=caller.user).count() == 1
    assert Evaluation.objects.get(owner=caller.user).idempotency_key == "same-key"


def test_concurrent_requests_with_one_key_and_different_bodies_conflict(
    kafka: KafkaNames,
) -> None:
    caller: Caller = make_caller()
    cv = UploadFactory(owner=caller.user, kind=Upload.Kind.CV)
    project = UploadFactory(owner=caller.user, kind=Upload.Kind.PROJECT)
    start = threading.Barrier(6, timeout=30)

    def post(index: int) -> Any:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {caller.token}")
        body = {
            "cv_id": str(cv.id),
            "project_id": str(project.id),
            "job_description": f"variant {index % 2}",
        }
        start.wait()
        try:
            return client.post(
                "/v1/evaluate", body, format="json", HTTP_IDEMPOTENCY_KEY="k"
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(post, range(6)))

    assert Evaluation.objects.filter(owner=caller.user).count() == 1
    winner = Evaluation.objects.get(owner=caller.user)
    for index, response in enumerate(responses):
        same_body = winner.job_description_override == f"variant {index % 2}"
        if same_body:
            assert response.status_code in (200, 202)
            assert response.json()["id"] == str(winner.id)
        else:
            assert response.status_code == 409
            assert response.json()["error"]["code"] == "CONFLICT"
    assert sum(r.status_code == 202 for r in responses) == 1
