"""Read queries behind the admin dashboard: job counts, throughput, failures, queue.

Database figures are computed in PostgreSQL; queue figures come from the task
layer and degrade to "unavailable" (with a reason) when the broker is down, so
the admin never turns into an error page because Kafka is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from confluent_kafka import KafkaException
from django.db.models import Aggregate, Count, DurationField, F, Q
from django.utils import timezone

from evaluations.models import Evaluation
from queueing.conf import queue_settings
from queueing.lag import PartitionLag, dead_letter_count, group_lag
from queueing.topics import BrokerUnavailable

# Long enough for a healthy local or in-cluster broker, short enough that the
# admin index stays usable while the broker is down.
BROKER_TIMEOUT_SECONDS = 1.5


class PercentileCont(Aggregate):
    """PostgreSQL's `percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)`."""

    function = "percentile_cont"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, *, fraction: float, **extra: Any) -> None:
        fraction = float(fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        super().__init__(expression, fraction=repr(fraction), **extra)


@dataclass(frozen=True)
class ProcessingTimes:
    """Processing time (`finished_at - started_at`) of completed jobs."""

    count: int
    median: timedelta | None
    p95: timedelta | None


@dataclass(frozen=True)
class Throughput:
    completed_last_hour: int
    completed_last_day: int
    failed_last_day: int


@dataclass(frozen=True)
class QueueStatus:
    available: bool
    reason: str = ""
    group: str = ""
    state: str = ""
    members: int = 0
    partitions: tuple[PartitionLag, ...] = field(default_factory=tuple)
    dead_letters: int | None = None
    dead_letters_reason: str = ""

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)


def status_counts() -> dict[str, int]:
    """Number of jobs in each status, every status present."""
    counts = dict(
        Evaluation.objects.order_by()
        .values_list("status")
        .annotate(count=Count("id"))
        .values_list("status", "count")
    )
    return {status: counts.get(status, 0) for status in Evaluation.Status.values}


def throughput(*, now: datetime | None = None) -> Throughput:
    now = now or timezone.now()
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
    completed = Q(status=Evaluation.Status.COMPLETED)
    failed = Q(status=Evaluation.Status.FAILED)
    figures = Evaluation.objects.filter(finished_at__gte=day_ago).aggregate(
        completed_last_hour=Count(
            "id", filter=completed & Q(finished_at__gte=hour_ago)
        ),
        completed_last_day=Count("id", filter=completed),
        failed_last_day=Count("id", filter=failed),
    )
    return Throughput(**figures)


def failure_codes() -> list[tuple[str, int]]:
    """Failed jobs per error code, the most frequent first."""
    return list(
        Evaluation.objects.filter(status=Evaluation.Status.FAILED)
        .order_by()
        .values_list("error_code")
        .annotate(count=Count("id"))
        .order_by("-count", "error_code")
        .values_list("error_code", "count")
    )


def processing_times(*, since: datetime) -> ProcessingTimes:
    """Median and 95th percentile processing time of jobs completed since `since`."""
    duration = F("finished_at") - F("started_at")
    figures = Evaluation.objects.filter(
        status=Evaluation.Status.COMPLETED,
        finished_at__gte=since,
        started_at__isnull=False,
    ).aggregate(
        count=Count("id"),
        median=PercentileCont(duration, fraction=0.5, output_field=DurationField()),
        p95=PercentileCont(duration, fraction=0.95, output_field=DurationField()),
    )
    return ProcessingTimes(**figures)


def queue_status(*, timeout: float = BROKER_TIMEOUT_SECONDS) -> QueueStatus:
    """The worker group's lag per partition and the dead letters awaiting replay."""
    conf = queue_settings()
    try:
        lag = group_lag(topics=[conf.job_topic, conf.retry_topic], timeout=timeout)
    except (BrokerUnavailable, KafkaException) as exc:
        return QueueStatus(
            available=False,
            reason=f"No answer from the Kafka broker ({conf.brokers}) within "
            f"{timeout:g} s: {_short_reason(exc)}",
        )
    dead_letters: int | None = None
    dead_letters_reason = ""
    try:
        dead_letters = dead_letter_count(timeout=timeout)
    except (BrokerUnavailable, KafkaException) as exc:
        dead_letters_reason = _short_reason(exc)
    return QueueStatus(
        available=True,
        group=lag.group,
        state=lag.state,
        members=lag.members,
        partitions=tuple(lag.partitions),
        dead_letters=dead_letters,
        dead_letters_reason=dead_letters_reason,
    )


def _short_reason(exc: Exception) -> str:
    """librdkafka's human text ("Broker transport failure") without the error repr."""
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    match = re.search(r'str="([^"]*)"', text)
    reason = match.group(1) if match else text
    return reason.removeprefix("Failed to get metadata: ").removeprefix("Local: ")
