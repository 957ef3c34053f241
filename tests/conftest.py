"""Fixtures for the real PostgreSQL and the real Kafka broker.

`make test` starts both; pytest-django creates the test database. Each test
that touches Kafka gets topics and a consumer group of its own, so tests never
see each other's messages.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from queueing.topics import delete_topics, ensure_topics

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _default_opening(request: pytest.FixtureRequest) -> None:
    """Re-seed the default opening for tests with a database.

    Transactional tests flush every table afterwards, data migrations included.
    """
    names = set(request.fixturenames)
    marker = request.node.get_closest_marker("django_db")
    if "transactional_db" in names or (marker and marker.kwargs.get("transaction")):
        request.getfixturevalue("transactional_db")
    elif "db" in names or marker:
        request.getfixturevalue("db")
    else:
        return
    from django.apps import apps

    seed = importlib.import_module(
        "evaluations.migrations.0002_default_opening"
    ).seed_default_opening
    seed(apps, None)


@dataclass(frozen=True)
class KafkaNames:
    job_topic: str
    retry_topic: str
    dead_letter_topic: str
    group: str
    prefix: str


@pytest.fixture
def kafka(settings) -> Iterator[KafkaNames]:  # type: ignore[no-untyped-def]
    """Fresh topics, consumer group and transactional-id prefix for one test."""
    suffix = uuid.uuid4().hex[:10]
    names = KafkaNames(
        job_topic=f"test-jobs-{suffix}",
        retry_topic=f"test-jobs-{suffix}-retry",
        dead_letter_topic=f"test-jobs-{suffix}-dlq",
        group=f"test-workers-{suffix}",
        prefix=f"test-{suffix}",
    )
    settings.KAFKA_JOB_TOPIC = names.job_topic
    settings.KAFKA_RETRY_TOPIC = names.retry_topic
    settings.KAFKA_DEAD_LETTER_TOPIC = names.dead_letter_topic
    settings.KAFKA_CONSUMER_GROUP = names.group
    settings.KAFKA_TRANSACTIONAL_ID_PREFIX = names.prefix
    settings.KAFKA_TOPIC_PARTITIONS = 3
    settings.QUEUE_RETRY_BACKOFF_SECONDS = 0.2
    settings.QUEUE_RETRY_BACKOFF_MAX_SECONDS = 0.5
    report = ensure_topics()
    assert report.ok, report.errors
    yield names
    delete_topics([names.job_topic, names.retry_topic, names.dead_letter_topic])


def database_url() -> str:
    """The URL of the test database pytest-django created (for subprocesses)."""
    db = django_settings.DATABASES["default"]
    return (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/"
        f"{db['NAME']}"
    )


def subprocess_env(names: KafkaNames, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DEBUG": "1",
            "DATABASE_URL": database_url(),
            "KAFKA_BROKERS": ",".join(django_settings.KAFKA_BROKERS),
            "KAFKA_JOB_TOPIC": names.job_topic,
            "KAFKA_RETRY_TOPIC": names.retry_topic,
            "KAFKA_DEAD_LETTER_TOPIC": names.dead_letter_topic,
            "KAFKA_CONSUMER_GROUP": names.group,
            "KAFKA_TRANSACTIONAL_ID_PREFIX": names.prefix,
            "KAFKA_TOPIC_PARTITIONS": str(django_settings.KAFKA_TOPIC_PARTITIONS),
            "QUEUE_RETRY_BACKOFF_SECONDS": str(
                django_settings.QUEUE_RETRY_BACKOFF_SECONDS
            ),
            "QUEUE_RETRY_BACKOFF_MAX_SECONDS": str(
                django_settings.QUEUE_RETRY_BACKOFF_MAX_SECONDS
            ),
            "QUEUE_MAX_ATTEMPTS": str(django_settings.QUEUE_MAX_ATTEMPTS),
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env


@pytest.fixture
def start_worker(
    kafka: KafkaNames, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start `run_evaluation_worker` processes; all are stopped after the test."""
    processes: list[subprocess.Popen] = []

    def start(*args: str, **env: str) -> subprocess.Popen:
        log = open(tmp_path / f"worker-{len(processes)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "manage.py", "run_evaluation_worker", *args],
            cwd=PROJECT_ROOT,
            env=subprocess_env(kafka, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process.log_path = log.name  # type: ignore[attr-defined]
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def wait_for(
    condition: Callable[[], object], *, timeout: float = 30.0, interval: float = 0.05
) -> object:
    """Poll `condition` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
