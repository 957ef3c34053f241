"""A django-tasks backend that runs tasks through Kafka.

Application code uses the ordinary API::

    from django_tasks import task

    @task(takes_context=True, key_argument="order_id")
    def ship(context, order_id): ...

    with transaction.atomic():
        order = Order.objects.create(...)
        ship.enqueue(order_id=str(order.pk))   # published after the commit

`enqueue` publishes from `transaction.on_commit`: a rolled-back transaction
publishes nothing, and a worker never sees a job before its data is committed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import transaction
from django_tasks import TaskContext
from django_tasks.backends.base import BaseTaskBackend
from django_tasks.base import Task, TaskResult, TaskResultStatus
from django_tasks.exceptions import InvalidTaskError
from django_tasks.signals import task_enqueued
from typing_extensions import ParamSpec

from config.logging import request_id_var
from queueing.messages import JobMessage
from queueing.producer import get_publisher

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True, kw_only=True)
class KafkaTask(Task[P, T]):
    # Name of the keyword argument that identifies the job (used as the
    # message key and as the job id); a random id is used when unset.
    key_argument: str | None = None


@dataclass(frozen=True, kw_only=True)
class KafkaTaskContext(TaskContext):
    attempt_number: int
    max_attempts: int
    replayed: bool = False
    # Wall-clock time the message was handed to the broker, after the commit.
    enqueued_at: float = 0.0

    @property
    def is_final_attempt(self) -> bool:
        return self.attempt_number >= self.max_attempts


class KafkaTaskBackend(BaseTaskBackend):
    task_class = KafkaTask
    supports_defer = False
    supports_async_task = False
    supports_get_result = False

    def validate_task(self, task: Task) -> None:
        super().validate_task(task)
        key = getattr(task, "key_argument", None)
        if key is not None and not isinstance(key, str):
            raise InvalidTaskError("key_argument must be the name of an argument.")

    def enqueue(
        self,
        task: Task[P, T],
        args: P.args,  # type: ignore[valid-type]
        kwargs: P.kwargs,  # type: ignore[valid-type]
    ) -> TaskResult[T]:
        self.validate_task(task)
        key_argument = getattr(task, "key_argument", None)
        job_id = str(kwargs[key_argument]) if key_argument else uuid.uuid4().hex
        result: TaskResult[T] = TaskResult(
            task=task,
            id=job_id,
            status=TaskResultStatus.READY,
            enqueued_at=None,
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=list(args),
            kwargs=dict(kwargs),
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        message = JobMessage(
            job_id=job_id,
            task_path=task.module_path,
            args=result.args,
            kwargs=result.kwargs,
            request_id=request_id_var.get(),
        )

        def publish() -> None:
            get_publisher().submit(message)
            task_enqueued.send(type(self), task_result=result)

        transaction.on_commit(publish, robust=True)
        return result


def build_context(
    result: TaskResult[Any], message: JobMessage, max_attempts: int
) -> KafkaTaskContext:
    return KafkaTaskContext(
        task_result=result,
        attempt_number=message.attempt,
        max_attempts=max_attempts,
        replayed=message.replayed,
        enqueued_at=message.enqueued_at,
    )
