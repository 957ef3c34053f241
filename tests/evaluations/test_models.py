from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from evaluations.models import Evaluation, JobOpening
from tests.evaluations.factories import (
    EvaluationFactory,
    JobOpeningFactory,
    RubricCriterionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_default_opening_is_seeded_with_nine_weighted_criteria() -> None:
    opening = JobOpening.objects.get(is_default=True)
    assert opening.title == "Product Engineer (Backend)"
    weights = {(c.group, c.key): c.weight for c in opening.criteria.all()}
    assert len(weights) == 9
    assert weights[("cv", "technical_skills")] == Decimal("0.40")
    assert weights[("cv", "experience_level")] == Decimal("0.25")
    assert weights[("cv", "relevant_achievements")] == Decimal("0.20")
    assert weights[("cv", "cultural_fit")] == Decimal("0.15")
    assert weights[("project", "correctness")] == Decimal("0.30")
    assert weights[("project", "code_quality")] == Decimal("0.25")
    assert weights[("project", "resilience")] == Decimal("0.20")
    assert weights[("project", "documentation")] == Decimal("0.15")
    assert weights[("project", "creativity")] == Decimal("0.10")
    for group in ("cv", "project"):
        total = sum(w for (g, _), w in weights.items() if g == group)
        assert total == Decimal("1")


def test_database_rejects_an_unknown_status() -> None:
    evaluation = EvaluationFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Evaluation.objects.filter(pk=evaluation.pk).update(status="exploded")


def test_idempotency_key_is_unique_per_owner() -> None:
    user = UserFactory()
    EvaluationFactory(owner=user, idempotency_key="k-1")
    EvaluationFactory(idempotency_key="k-1")  # another owner may reuse it
    with pytest.raises(IntegrityError), transaction.atomic():
        EvaluationFactory(owner=user, idempotency_key="k-1")


def test_completed_job_must_have_scores() -> None:
    evaluation = EvaluationFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Evaluation.objects.filter(pk=evaluation.pk).update(status="completed")


def test_failed_job_must_have_an_error_code() -> None:
    evaluation = EvaluationFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Evaluation.objects.filter(pk=evaluation.pk).update(status="failed")


def test_scores_out_of_range_are_rejected() -> None:
    evaluation = EvaluationFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Evaluation.objects.filter(pk=evaluation.pk).update(project_score=Decimal("0.5"))


def test_only_one_default_opening() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        JobOpeningFactory(is_default=True)


def test_criterion_weight_must_be_positive() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        RubricCriterionFactory(weight=Decimal("0"))
