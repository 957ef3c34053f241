"""The admin dashboard's figures, from PostgreSQL and from the real broker."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from evaluations import dashboard
from evaluations.models import Evaluation
from evaluations.templatetags.dashboard import format_duration
from queueing.conf import client_config
from queueing.lag import dead_letter_count
from tests.conftest import KafkaNames
from tests.evaluations.factories import EvaluationFactory

pytestmark = pytest.mark.django_db


def finished(status: str, *, seconds: float, ago: timedelta, **extra: Any) -> None:
    end = timezone.now() - ago
    if status == Evaluation.Status.COMPLETED:
        extra.setdefault("cv_match_rate", "0.50")
        extra.setdefault("project_score", "5.0")
    if status == Evaluation.Status.FAILED:
        extra.setdefault("error_code", "llm_unavailable")
    EvaluationFactory(
        status=status,
        started_at=end - timedelta(seconds=seconds),
        finished_at=end,
        **extra,
    )


def test_status_counts_list_every_status() -> None:
    assert dashboard.status_counts() == {
        "queued": 0,
        "processing": 0,
        "completed": 0,
        "failed": 0,
    }
    EvaluationFactory.create_batch(2, status=Evaluation.Status.QUEUED)
    EvaluationFactory(status=Evaluation.Status.PROCESSING)
    finished("completed", seconds=1, ago=timedelta(minutes=1))
    finished("failed", seconds=1, ago=timedelta(minutes=1))
    assert dashboard.status_counts() == {
        "queued": 2,
        "processing": 1,
        "completed": 1,
        "failed": 1,
    }


def test_failure_codes_most_frequent_first() -> None:
    for code in ("llm_unavailable", "scoring_error", "llm_unavailable", "internal"):
        finished("failed", seconds=1, ago=timedelta(hours=3), error_code=code)
    # A job that failed once and is queued for a retry is not a failed job.
    EvaluationFactory(status=Evaluation.Status.QUEUED, error_code="llm_unavailable")
    assert dashboard.failure_codes() == [
        ("llm_unavailable", 2),
        ("internal", 1),
        ("scoring_error", 1),
    ]


def test_throughput_windows() -> None:
    finished("completed", seconds=1, ago=timedelta(minutes=5))
    finished("completed", seconds=1, ago=timedelta(minutes=50))
    finished("completed", seconds=1, ago=timedelta(hours=5))
    finished("completed", seconds=1, ago=timedelta(days=2))
    finished("failed", seconds=1, ago=timedelta(hours=2))
    finished("failed", seconds=1, ago=timedelta(days=3))
    assert dashboard.throughput() == dashboard.Throughput(
        completed_last_hour=2, completed_last_day=3, failed_last_day=1
    )


def test_processing_time_percentiles_are_computed_in_postgresql() -> None:
    for seconds in (1, 2, 3, 4, 10):
        finished("completed", seconds=seconds, ago=timedelta(hours=1))
    # Neither old nor failed jobs count.
    finished("completed", seconds=500, ago=timedelta(days=2))
    finished("failed", seconds=500, ago=timedelta(hours=1))

    times = dashboard.processing_times(since=timezone.now() - timedelta(days=1))
    assert times.count == 5
    assert times.median == timedelta(seconds=3)
    # Linear interpolation: position 0.95 * 4 = 3.8, between 4 s and 10 s.
    assert times.p95 == timedelta(seconds=8.8)


def test_processing_times_without_jobs() -> None:
    times = dashboard.processing_times(since=timezone.now() - timedelta(days=1))
    assert times == dashboard.ProcessingTimes(count=0, median=None, p95=None)


def test_percentile_fraction_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        dashboard.PercentileCont("started_at", fraction=1.5)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (timedelta(milliseconds=126), "126 ms"),
        (timedelta(seconds=4.25), "4.2 s"),
        (timedelta(seconds=192), "3 min 12 s"),
        (timedelta(hours=2, minutes=5), "2 h 5 min"),
    ],
)
def test_durations_read_naturally(value: timedelta | None, text: str) -> None:
    assert format_duration(value) == text


# --- The queue ----------------------------------------------------------------------


def produce(topic: str, partition: int, count: int, *, transactional: bool) -> None:
    conf: dict[str, Any] = {}
    if transactional:
        conf["transactional.id"] = f"test-{uuid.uuid4().hex}"
    producer = Producer(client_config(**conf))
    if transactional:
        producer.init_transactions(10)
        producer.begin_transaction()
    for number in range(count):
        producer.produce(topic, value=f"message {number}".encode(), partition=partition)
    if transactional:
        producer.commit_transaction(10)
    assert producer.flush(10) == 0


@pytest.mark.kafka
def test_queue_status_reports_lag_per_partition(kafka: KafkaNames) -> None:
    produce(kafka.job_topic, 1, 3, transactional=False)
    status = dashboard.queue_status()
    assert status.available
    assert status.group == kafka.group
    lag = {(p.topic, p.partition): p.lag for p in status.partitions}
    assert lag == {
        **{(kafka.job_topic, n): 0 for n in range(3)},
        **{(kafka.retry_topic, n): 0 for n in range(3)},
        (kafka.job_topic, 1): 3,
    }
    assert status.total_lag == 3
    assert status.dead_letters == 0


@pytest.mark.kafka
def test_dead_letters_are_counted_not_inferred_from_offsets(kafka: KafkaNames) -> None:
    # Two transactions: 3 + 2 messages, but 7 offsets with the commit markers.
    produce(kafka.dead_letter_topic, 0, 3, transactional=True)
    produce(kafka.dead_letter_topic, 0, 2, transactional=True)
    assert dead_letter_count() == 5
    assert dead_letter_count(limit=4) == 4

    # Replayed dead letters (the replay group's position) no longer count.
    replay = Consumer(client_config(**{"group.id": f"{kafka.group}-replay"}))
    replay.commit(
        offsets=[TopicPartition(kafka.dead_letter_topic, 0, 4)], asynchronous=False
    )
    replay.close()
    assert dead_letter_count() == 2
    assert dashboard.queue_status().dead_letters == 2


def test_queue_unavailable_when_the_broker_is_down(settings: Any) -> None:
    settings.KAFKA_BROKERS = ["127.0.0.1:1"]
    started = time.monotonic()
    status = dashboard.queue_status(timeout=0.5)
    assert time.monotonic() - started < 3
    assert not status.available
    assert "127.0.0.1:1" in status.reason
    assert status.reason.startswith("No answer from the Kafka broker")
    assert "KafkaError" not in status.reason


def test_index_page_renders_fast_when_the_broker_is_down(
    admin_client: Client, settings: Any
) -> None:
    settings.KAFKA_BROKERS = ["127.0.0.1:1"]
    finished("failed", seconds=1, ago=timedelta(minutes=1), error_code="scoring_error")
    started = time.monotonic()
    response = admin_client.get(reverse("admin:index"))
    assert time.monotonic() - started < 5
    assert response.status_code == 200
    page = response.content.decode()
    assert "Unavailable" in page
    assert "No answer from the Kafka broker (127.0.0.1:1)" in page
    # The database figures are still there.
    assert "<code>scoring_error</code>" in page
    assert '<span class="card-value">1</span>' in page


@pytest.mark.kafka
def test_index_page_shows_the_queue(admin_client: Client, kafka: KafkaNames) -> None:
    produce(kafka.job_topic, 0, 2, transactional=False)
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert f"<code>{kafka.group}</code>" in page
    assert '<td data-figure="total-lag">2 messages</td>' in page
    assert '<td data-figure="dead-letters">0</td>' in page
