"""The task the worker runs for each evaluation job."""

from __future__ import annotations

from django_tasks import TaskContext, task

from evaluations.services import evaluation_requeue, evaluation_run
from queueing.backend import KafkaTaskContext


@task(takes_context=True, key_argument="evaluation_id")
def evaluate(context: TaskContext, evaluation_id: str) -> None:
    assert isinstance(context, KafkaTaskContext)
    if context.replayed:
        # A dead letter replayed by an operator: its job failed for good, so
        # it needs the explicit re-run transition before it can run again.
        evaluation_requeue(evaluation_id=evaluation_id)
    evaluation_run(evaluation_id=evaluation_id, final_attempt=context.is_final_attempt)
