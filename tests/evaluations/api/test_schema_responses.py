"""Every kind of real response, checked against the served OpenAPI schema.

The fuzz test mostly meets ids that do not exist; here each documented
success and error is produced on purpose and validated by Schemathesis.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from evaluations.models import Evaluation, Upload
from tests.evaluations.api.conftest import Caller, make_caller
from tests.evaluations.api.documents import PNG_BYTES, PROJECT_TEXT, pdf_bytes
from tests.evaluations.api.openapi import load_schema
from tests.evaluations.factories import EvaluationFactory, UploadFactory

pytestmark = pytest.mark.django_db

schema = load_schema()
UPLOAD = schema["/v1/upload"]["POST"]
EVALUATE = schema["/v1/evaluate"]["POST"]
RESULT = schema["/v1/result/{id}"]["GET"]


@pytest.fixture
def owner(direct_wsgi: None) -> Caller:
    return make_caller()


def call(operation: Any, caller: Caller, *, status: int, **case: Any) -> Any:
    headers = {"Authorization": f"Token {caller.token}", **case.pop("headers", {})}
    response = operation.Case(headers=headers, **case).call_and_validate()
    assert response.status_code == status, response.text
    return response


def test_upload_responses(owner: Caller) -> None:
    valid = {"cv": pdf_bytes(), "project": pdf_bytes(PROJECT_TEXT)}
    call(UPLOAD, owner, status=201, body=valid)
    call(UPLOAD, owner, status=400, body={"cv": pdf_bytes()})
    call(UPLOAD, owner, status=415, body={"cv": PNG_BYTES, "project": PNG_BYTES})
    call(UPLOAD, owner, status=401, body=valid, headers={"Authorization": "Token x"})


def test_evaluate_responses(owner: Caller, settings: Any) -> None:
    cv = UploadFactory(owner=owner.user, kind=Upload.Kind.CV)
    project = UploadFactory(owner=owner.user, kind=Upload.Kind.PROJECT)
    body = {"cv_id": str(cv.id), "project_id": str(project.id)}
    key = {"Idempotency-Key": "schema-check"}

    call(EVALUATE, owner, status=202, body=body, headers=key)
    call(EVALUATE, owner, status=200, body=body, headers=key)
    changed = {**body, "job_description": "Another role."}
    call(EVALUATE, owner, status=409, body=changed, headers=key)
    call(EVALUATE, owner, status=400, body={**body, "job_title": "Nobody"})
    call(EVALUATE, owner, status=404, body={**body, "cv_id": str(project.id)[::-1]})
    call(EVALUATE, owner, status=415, body="x", media_type="text/plain")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    call(EVALUATE, owner, status=413, body={**body, "job_description": "x" * 2000})


def test_result_responses(owner: Caller) -> None:
    queued = EvaluationFactory(owner=owner.user)
    completed = EvaluationFactory(
        owner=owner.user,
        status=Evaluation.Status.COMPLETED,
        finished_at=timezone.now(),
        cv_match_rate=Decimal("0.75"),
        cv_feedback="Good.",
        project_score=Decimal("8.0"),
        project_feedback="Solid.",
        overall_summary="Recommended.",
        breakdown={
            "cv": [
                {"key": "k", "name": "K", "weight": "1", "score": 4, "rationale": "r"}
            ],
            "project": [],
        },
    )
    failed = EvaluationFactory(
        owner=owner.user,
        status=Evaluation.Status.FAILED,
        finished_at=timezone.now(),
        error_code="llm_unavailable",
        error_message="The model was unavailable.",
    )
    for evaluation in (queued, completed, failed):
        response = call(
            RESULT, owner, status=200, path_parameters={"id": evaluation.id}
        )
        call(
            RESULT,
            owner,
            status=304,
            path_parameters={"id": evaluation.id},
            headers={"If-None-Match": response.headers["etag"][0]},
        )
    call(RESULT, owner, status=404, path_parameters={"id": str(queued.id)[::-1]})
    call(RESULT, make_caller(), status=404, path_parameters={"id": queued.id})


def test_rate_limited_responses(owner: Caller, settings: Any) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "1/min", "ip": "100/min"},
    }
    missing = {"id": "00000000-0000-4000-8000-000000000000"}
    call(RESULT, owner, status=404, path_parameters=missing)
    call(RESULT, owner, status=429, path_parameters=missing)
