"""Property-based fuzzing of the API against its own OpenAPI schema.

Schemathesis reads the schema the app serves, generates valid and invalid
requests for every operation and checks each response: no server errors, and
every status code, header and body as the schema describes them.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.evaluations.api.conftest import make_caller
from tests.evaluations.api.openapi import load_schema

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

MAX_EXAMPLES = 150

schema = load_schema()


@pytest.fixture
def fuzz_token(direct_wsgi: None) -> str:
    return make_caller().token


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_to_its_schema(case: Any, fuzz_token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Token {fuzz_token}"})
