"""Every admin changelist, change and add page renders."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from evaluations.models import JobOpening
from tests.evaluations.factories import EvaluationFactory, UploadFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "model", ["evaluation", "upload", "jobopening", "rubriccriterion"]
)
def test_changelist(admin_client: Client, model: str) -> None:
    EvaluationFactory()
    response = admin_client.get(reverse(f"admin:evaluations_{model}_changelist"))
    assert response.status_code == 200


def test_change_pages(admin_client: Client) -> None:
    evaluation = EvaluationFactory()
    opening = JobOpening.objects.get(is_default=True)
    for name, pk in (
        ("evaluation", evaluation.pk),
        ("upload", UploadFactory().pk),
        ("jobopening", opening.pk),
        ("rubriccriterion", opening.criteria.first().pk),
    ):
        url = reverse(f"admin:evaluations_{name}_change", args=[pk])
        assert admin_client.get(url).status_code == 200, name


@pytest.mark.parametrize("model", ["jobopening", "rubriccriterion"])
def test_add_pages(admin_client: Client, model: str) -> None:
    response = admin_client.get(reverse(f"admin:evaluations_{model}_add"))
    assert response.status_code == 200
