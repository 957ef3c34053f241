"""Every admin changelist, change and add page renders (or is refused on purpose)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from evaluations.models import Evaluation, JobOpening
from tests.evaluations.factories import (
    EvaluationFactory,
    JobOpeningFactory,
    UploadFactory,
)

pytestmark = pytest.mark.django_db


def completed_evaluation(**overrides: Any) -> Evaluation:
    """A completed job scored against the default opening's nine criteria."""
    opening = JobOpening.objects.get(is_default=True)
    breakdown = {
        group: [
            {
                "key": criterion.key,
                "name": criterion.name,
                "weight": str(criterion.weight),
                "score": 4,
                "rationale": f"Clear evidence for {criterion.name.lower()}.",
            }
            for criterion in opening.criteria.filter(group=group)
        ]
        for group in ("cv", "project")
    }
    finished = timezone.now() - timedelta(minutes=3)
    values: dict[str, Any] = {
        "status": Evaluation.Status.COMPLETED,
        "opening": opening,
        "attempts": 1,
        "published_at": finished - timedelta(seconds=3),
        "started_at": finished - timedelta(seconds=2),
        "finished_at": finished,
        "cv_match_rate": Decimal("0.80"),
        "project_score": Decimal("8.0"),
        "cv_feedback": "Strong Python and Django background.",
        "project_feedback": "Solid design with retries and tests.",
        "overall_summary": "A good fit for the backend role.",
        "breakdown": breakdown,
        "provenance": {
            "provider": "offline",
            "model": "offline-heuristics",
            "prompt_version": "2026-12-01.1",
            "retrieval_backend": "postgres_fts",
            "prompt_tokens": 1200,
            "completion_tokens": 300,
            "llm_calls": 3,
            "attempts": 1,
            "durations_ms": {"retrieval": 12, "cv": 40, "project": 35, "total": 95},
        },
    }
    values.update(overrides)
    return EvaluationFactory(**values)


def failed_evaluation(**overrides: Any) -> Evaluation:
    values: dict[str, Any] = {
        "status": Evaluation.Status.FAILED,
        "attempts": 5,
        "error_code": "llm_unavailable",
        "error_message": "The language model provider was unavailable.",
        "started_at": timezone.now() - timedelta(seconds=30),
        "finished_at": timezone.now(),
    }
    values.update(overrides)
    return EvaluationFactory(**values)


@pytest.mark.parametrize("model", ["evaluation", "upload", "jobopening"])
def test_changelist(admin_client: Client, model: str) -> None:
    completed_evaluation()
    failed_evaluation()
    response = admin_client.get(reverse(f"admin:evaluations_{model}_changelist"))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        {"status__exact": "failed"},
        {"error_code": "llm_unavailable"},
        {"created_at__gte": "2020-01-01"},
        {"q": "document"},
        {"o": "7"},  # by provider
        {"o": "-8"},  # by age
    ],
)
def test_evaluation_changelist_filters_search_and_sorting(
    admin_client: Client, query: dict[str, str]
) -> None:
    completed_evaluation()
    failed_evaluation()
    response = admin_client.get(
        reverse("admin:evaluations_evaluation_changelist"), query
    )
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1


def test_evaluation_search_by_partial_id_and_file_name(admin_client: Client) -> None:
    wanted = completed_evaluation()
    other = completed_evaluation()
    url = reverse("admin:evaluations_evaluation_changelist")
    by_id = admin_client.get(url, {"q": str(wanted.id)[:13]})
    assert list(by_id.context["cl"].result_list) == [wanted]
    by_name = admin_client.get(url, {"q": other.cv.original_filename})
    assert list(by_name.context["cl"].result_list) == [other]


@pytest.mark.parametrize("status", list(Evaluation.Status.values))
def test_evaluation_change_page_in_every_status(
    admin_client: Client, status: str
) -> None:
    if status == Evaluation.Status.COMPLETED:
        evaluation = completed_evaluation()
    elif status == Evaluation.Status.FAILED:
        evaluation = failed_evaluation()
    else:
        evaluation = EvaluationFactory(status=status)
    url = reverse("admin:evaluations_evaluation_change", args=[evaluation.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert f"badge-{status}" in response.content.decode()


def test_other_change_pages(admin_client: Client) -> None:
    opening = JobOpening.objects.get(is_default=True)
    for name, pk in (("upload", UploadFactory().pk), ("jobopening", opening.pk)):
        url = reverse(f"admin:evaluations_{name}_change", args=[pk])
        assert admin_client.get(url).status_code == 200, name


def test_add_pages(admin_client: Client) -> None:
    assert (
        admin_client.get(reverse("admin:evaluations_jobopening_add")).status_code == 200
    )
    # Jobs and uploads are only ever created through the services.
    for name in ("evaluation", "upload"):
        url = reverse(f"admin:evaluations_{name}_add")
        assert admin_client.get(url).status_code == 403, name


def test_custom_pages(admin_client: Client) -> None:
    evaluation = completed_evaluation()
    for url in (
        reverse("admin:index"),
        reverse("admin:evaluations_evaluation_evaluate"),
        reverse("admin:evaluations_upload_text", args=[evaluation.cv_id]),
        reverse("admin:evaluations_upload_download", args=[evaluation.cv_id]),
        reverse("admin:evaluations_evaluation_history", args=[evaluation.pk]),
    ):
        assert admin_client.get(url).status_code == 200, url


def test_unknown_objects_are_not_found(admin_client: Client) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    for name in ("upload_text", "upload_download"):
        url = reverse(f"admin:evaluations_{name}", args=[missing])
        assert admin_client.get(url).status_code == 404, name
    url = reverse("admin:evaluations_evaluation_rerun", args=[missing])
    assert admin_client.post(url).status_code == 404


def test_opening_changelist_counts_criteria_and_evaluations(
    admin_client: Client,
) -> None:
    opening = JobOpening.objects.get(is_default=True)
    EvaluationFactory(opening=opening)
    EvaluationFactory(opening=opening)
    empty = JobOpeningFactory(title="Empty opening")
    response = admin_client.get(reverse("admin:evaluations_jobopening_changelist"))
    counts = {
        row.pk: (row.cv_criteria, row.project_criteria, row.evaluation_total)
        for row in response.context["cl"].result_list
    }
    # Four CV and five project criteria must not multiply the job count.
    assert counts[opening.pk] == (4, 5, 2)
    assert counts[empty.pk] == (0, 0, 0)
