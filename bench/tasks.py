"""The benchmarks' no-op job: a real evaluation row through the status machine.

It claims the job (`queued -> processing`) and completes it with fixed scores
in one transaction, recording how long after the commit the task started.
"""

from __future__ import annotations

import time
from decimal import Decimal

from django.db import transaction
from django_tasks import TaskContext, task

from evaluations.services import evaluation_claim, evaluation_complete
from queueing.backend import KafkaTaskContext


@task(takes_context=True, key_argument="evaluation_id")
def noop_evaluation(context: TaskContext, evaluation_id: str) -> None:
    assert isinstance(context, KafkaTaskContext)
    started = time.time()
    pickup_ms = (started - context.enqueued_at) * 1000 if context.enqueued_at else -1
    with transaction.atomic():
        token = evaluation_claim(evaluation_id=evaluation_id)
        if token is None:
            return
        evaluation_complete(
            evaluation_id=evaluation_id,
            run_token=token,
            cv_match_rate=Decimal("0.50"),
            cv_feedback="",
            project_score=Decimal("5.0"),
            project_feedback="",
            overall_summary="",
            breakdown={},
            provenance={"provider": "benchmark", "pickup_ms": round(pickup_ms, 3)},
        )
