from __future__ import annotations

from decimal import Decimal

import pytest

from evaluations.models import JobOpening
from evaluations.services import (
    CriterionSpec,
    RubricWeightsError,
    api_token_create,
    opening_create,
)

pytestmark = pytest.mark.django_db


def criteria(*weights: str, group: str = "cv") -> list[CriterionSpec]:
    return [
        CriterionSpec(group=group, key=f"c{i}", name=f"C{i}", weight=Decimal(w))
        for i, w in enumerate(weights)
    ]


def test_opening_create_accepts_weights_that_sum_to_one() -> None:
    opening = opening_create(
        title="Data Engineer",
        slug="data-engineer",
        job_description="Pipelines.",
        study_case_brief="Build a pipeline.",
        criteria=criteria("0.5", "0.5") + criteria("0.3", "0.7", group="project"),
    )
    assert opening.criteria.count() == 4


def test_opening_create_refuses_weights_that_do_not_sum_to_one() -> None:
    with pytest.raises(RubricWeightsError, match=r"cv criteria weights sum to 0\.9"):
        opening_create(
            title="Data Engineer",
            slug="data-engineer",
            job_description="Pipelines.",
            study_case_brief="Build a pipeline.",
            criteria=criteria("0.5", "0.4"),
        )
    assert not JobOpening.objects.filter(slug="data-engineer").exists()


def test_api_token_create_is_stable_per_user() -> None:
    first = api_token_create(username="integrator")
    assert len(first) == 40
    assert api_token_create(username="integrator") == first
