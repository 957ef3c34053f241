"""The job status machine: guarded compare-and-set transitions."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from evaluations.models import Evaluation
from evaluations.services import (
    evaluation_claim,
    evaluation_complete,
    evaluation_fail,
    evaluation_release,
    evaluation_requeue,
)
from tests.evaluations.factories import EvaluationFactory

pytestmark = pytest.mark.django_db

RESULT = {
    "cv_match_rate": Decimal("0.82"),
    "cv_feedback": "Strong backend profile.",
    "project_score": Decimal("7.5"),
    "project_feedback": "Solid report.",
    "overall_summary": "Recommended.",
    "breakdown": {"cv": [], "project": []},
    "provenance": {"provider": "test"},
}


def refresh(evaluation: Evaluation) -> Evaluation:
    evaluation.refresh_from_db()
    return evaluation


def test_claim_then_complete() -> None:
    evaluation = EvaluationFactory()
    token = evaluation_claim(evaluation_id=evaluation.id)
    assert token is not None
    assert refresh(evaluation).status == "processing"
    assert evaluation.attempts == 1
    assert evaluation.started_at is not None

    assert evaluation_complete(evaluation_id=evaluation.id, run_token=token, **RESULT)
    evaluation = refresh(evaluation)
    assert evaluation.status == "completed"
    assert evaluation.cv_match_rate == Decimal("0.82")
    assert evaluation.finished_at is not None


def test_duplicate_completion_changes_nothing() -> None:
    evaluation = EvaluationFactory()
    token = evaluation_claim(evaluation_id=evaluation.id)
    assert token is not None
    assert evaluation_complete(evaluation_id=evaluation.id, run_token=token, **RESULT)
    again = {**RESULT, "cv_feedback": "overwritten"}
    assert not evaluation_complete(
        evaluation_id=evaluation.id, run_token=token, **again
    )
    assert not evaluation_fail(
        evaluation_id=evaluation.id, run_token=token, code="x", message="late"
    )
    evaluation = refresh(evaluation)
    assert evaluation.status == "completed"
    assert evaluation.cv_feedback == "Strong backend profile."


def test_terminal_jobs_cannot_be_claimed() -> None:
    for status, extra in (
        ("completed", {"cv_match_rate": Decimal("0.5"), "project_score": Decimal("5")}),
        ("failed", {"error_code": "llm_rejected"}),
    ):
        evaluation = EvaluationFactory(status=status, **extra)
        assert evaluation_claim(evaluation_id=evaluation.id) is None
        assert refresh(evaluation).status == status
        assert evaluation.attempts == 0


def test_a_stale_run_cannot_finish_after_a_newer_claim() -> None:
    evaluation = EvaluationFactory()
    stale = evaluation_claim(evaluation_id=evaluation.id)
    fresh = evaluation_claim(evaluation_id=evaluation.id)  # redelivered after a crash
    assert stale is not None and fresh is not None and stale != fresh
    assert not evaluation_complete(
        evaluation_id=evaluation.id, run_token=stale, **RESULT
    )
    assert not evaluation_fail(
        evaluation_id=evaluation.id, run_token=stale, code="x", message="stale"
    )
    assert refresh(evaluation).status == "processing"
    assert evaluation_complete(evaluation_id=evaluation.id, run_token=fresh, **RESULT)
    assert refresh(evaluation).attempts == 2


def test_complete_needs_processing() -> None:
    evaluation = EvaluationFactory()
    assert not evaluation_complete(
        evaluation_id=evaluation.id, run_token=uuid.uuid4(), **RESULT
    )
    assert refresh(evaluation).status == "queued"


def test_failed_goes_back_to_queued_only_by_requeue() -> None:
    evaluation = EvaluationFactory()
    token = evaluation_claim(evaluation_id=evaluation.id)
    assert token is not None
    assert evaluation_fail(
        evaluation_id=evaluation.id,
        run_token=token,
        code="llm_rejected",
        message="The model refused the request.",
    )
    evaluation = refresh(evaluation)
    assert (evaluation.status, evaluation.error_code) == ("failed", "llm_rejected")
    assert evaluation_claim(evaluation_id=evaluation.id) is None

    assert evaluation_requeue(evaluation_id=evaluation.id)
    evaluation = refresh(evaluation)
    assert (evaluation.status, evaluation.error_code) == ("queued", "")
    assert not evaluation_requeue(evaluation_id=evaluation.id)  # not failed any more


def test_requeue_refuses_completed_jobs() -> None:
    evaluation = EvaluationFactory(
        status="completed", cv_match_rate=Decimal("0.5"), project_score=Decimal("5")
    )
    assert not evaluation_requeue(evaluation_id=evaluation.id)
    assert refresh(evaluation).status == "completed"


def test_release_hands_a_job_back_for_retry() -> None:
    evaluation = EvaluationFactory()
    token = evaluation_claim(evaluation_id=evaluation.id)
    assert token is not None
    assert evaluation_release(
        evaluation_id=evaluation.id,
        run_token=token,
        code="llm_unavailable",
        message="503",
    )
    evaluation = refresh(evaluation)
    assert evaluation.status == "queued"
    assert evaluation.error_code == "llm_unavailable"
    assert not evaluation_release(
        evaluation_id=evaluation.id, run_token=token, code="x", message="again"
    )
