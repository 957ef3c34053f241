from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection

from tests.queueing.tasks import SCHEMA


@pytest.fixture
def queue_tables(transactional_db: None, settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The test tasks' tables, and their reconciler registered."""
    settings.QUEUE_RECONCILERS = ["tests.queueing.tasks.republish_stale"]
    with connection.cursor() as cursor:
        cursor.execute(SCHEMA)
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS queue_test_jobs, queue_test_runs")
