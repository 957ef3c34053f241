"""GET /v1/result/{id}: every status, ETags, ownership; reads never write."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from evaluations.models import Evaluation
from tests.evaluations.api.conftest import Caller, assert_envelope
from tests.evaluations.factories import EvaluationFactory

pytestmark = pytest.mark.django_db

BREAKDOWN = {
    "cv": [
        {
            "key": "technical_skills",
            "name": "Technical skills",
            "weight": "0.40",
            "score": 4,
            "rationale": "Python and Django.",
        }
    ],
    "project": [
        {
            "key": "correctness",
            "name": "Correctness",
            "weight": "0.30",
            "score": 5,
            "rationale": "Meets the brief.",
        }
    ],
}


def completed(owner: object) -> Evaluation:
    return EvaluationFactory(
        owner=owner,
        status=Evaluation.Status.COMPLETED,
        finished_at=timezone.now(),
        cv_match_rate=Decimal("0.82"),
        cv_feedback="Strong backend skills.",
        project_score=Decimal("7.5"),
        project_feedback="Solid and well tested.",
        overall_summary="A good fit.",
        breakdown=BREAKDOWN,
    )


@pytest.mark.parametrize("status", ["queued", "processing"])
def test_an_unfinished_job_shows_only_its_status(caller: Caller, status: str) -> None:
    evaluation = EvaluationFactory(owner=caller.user, status=status)
    response = caller.result(evaluation.id)
    assert response.status_code == 200
    assert response.json() == {"id": str(evaluation.id), "status": status}


def test_a_completed_job_shows_its_result(caller: Caller) -> None:
    evaluation = completed(caller.user)
    response = caller.result(evaluation.id)
    assert response.status_code == 200
    assert response.json() == {
        "id": str(evaluation.id),
        "status": "completed",
        "result": {
            "cv_match_rate": 0.82,
            "cv_feedback": "Strong backend skills.",
            "project_score": 7.5,
            "project_feedback": "Solid and well tested.",
            "overall_summary": "A good fit.",
            "breakdown": BREAKDOWN,
        },
    }


def test_a_failed_job_shows_its_error(caller: Caller) -> None:
    evaluation = EvaluationFactory(
        owner=caller.user,
        status=Evaluation.Status.FAILED,
        finished_at=timezone.now(),
        error_code="llm_unavailable",
        error_message="The language model was unavailable.",
    )
    response = caller.result(evaluation.id)
    assert response.json() == {
        "id": str(evaluation.id),
        "status": "failed",
        "error": {
            "code": "llm_unavailable",
            "message": "The language model was unavailable.",
        },
    }


def test_unknown_and_malformed_ids_are_not_found(caller: Caller) -> None:
    for evaluation_id in (
        "00000000-0000-4000-8000-000000000000",
        "not-a-uuid",
        "' OR 1=1--",
        "1;DROP TABLE evaluations_evaluation",
    ):
        assert_envelope(caller.result(evaluation_id), 404, "NOT_FOUND")


def test_another_users_job_is_not_found(caller: Caller, other_caller: Caller) -> None:
    evaluation = completed(caller.user)
    assert_envelope(other_caller.result(evaluation.id), 404, "NOT_FOUND")


def test_a_superuser_sees_every_job(caller: Caller, admin_caller: Caller) -> None:
    evaluation = completed(caller.user)
    assert admin_caller.result(evaluation.id).json()["status"] == "completed"


def test_the_etag_answers_if_none_match_with_304(caller: Caller) -> None:
    evaluation = completed(caller.user)
    first = caller.result(evaluation.id)
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2
    assert "private" in first["Cache-Control"]

    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = caller.result(evaluation.id, **{"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again["ETag"] == etag

    stale = caller.result(evaluation.id, **{"If-None-Match": '"stale"'})
    assert stale.status_code == 200
    assert stale.json()["status"] == "completed"


def test_the_etag_changes_with_the_status_and_finish_time(caller: Caller) -> None:
    evaluation = EvaluationFactory(owner=caller.user)
    queued = caller.result(evaluation.id)["ETag"]
    Evaluation.objects.filter(id=evaluation.id).update(status="processing")
    processing = caller.result(evaluation.id)["ETag"]
    Evaluation.objects.filter(id=evaluation.id).update(
        status="failed", error_code="x", finished_at=timezone.now()
    )
    failed = caller.result(evaluation.id)["ETag"]
    Evaluation.objects.filter(id=evaluation.id).update(
        finished_at=timezone.now() + timedelta(seconds=5)
    )
    failed_again = caller.result(evaluation.id)["ETag"]
    assert len({queued, processing, failed, failed_again}) == 4
    # The old ETag no longer matches: the client gets the new body.
    response = caller.result(evaluation.id, **{"If-None-Match": queued})
    assert response.status_code == 200


def test_reading_a_result_never_changes_the_job(caller: Caller) -> None:
    evaluation = EvaluationFactory(owner=caller.user)
    before = model_to_dict(Evaluation.objects.get(id=evaluation.id))
    for _ in range(3):
        caller.result(evaluation.id)
        caller.client.head(f"/v1/result/{evaluation.id}")
    assert model_to_dict(Evaluation.objects.get(id=evaluation.id)) == before


def test_another_method_on_the_result_is_not_allowed(caller: Caller) -> None:
    evaluation = EvaluationFactory(owner=caller.user)
    for method in ("post", "put", "patch", "delete"):
        response = getattr(caller.client, method)(f"/v1/result/{evaluation.id}")
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "INVALID_ARGUMENT"
        assert "GET" in response["Allow"]
    assert Evaluation.objects.filter(id=evaluation.id).exists()
