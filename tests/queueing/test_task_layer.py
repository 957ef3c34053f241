"""The task layer end to end: real broker, real PostgreSQL, real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from django.db import transaction

from queueing.conf import client_config
from queueing.messages import JobMessage
from queueing.producer import get_publisher
from tests.conftest import PROJECT_ROOT, KafkaNames, subprocess_env, wait_for
from tests.queueing import tasks
from tests.queueing.tasks import create_jobs, done_counts, job_counts, run_count

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("queue_tables")]

StartWorker = Callable[..., subprocess.Popen]


def all_done(count: int) -> Callable[[], bool]:
    return lambda: job_counts().get("done", 0) == count


def topic_messages(
    topic: str, *, expect: int, timeout: float = 10.0
) -> list[JobMessage]:
    """Every committed message of `topic`, read from the beginning."""
    consumer = Consumer(
        client_config(
            **{
                "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
    )
    consumer.subscribe([topic])
    messages: list[JobMessage] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            raw = consumer.poll(0.2)
            if raw is None or raw.error():
                if len(messages) >= expect and raw is None:
                    break
                continue
            messages.append(JobMessage.decode(raw.value(), raw.headers()))
    finally:
        consumer.close()
    return messages


def test_committed_enqueue_runs_once_and_rolled_back_publishes_nothing(
    kafka: KafkaNames, start_worker: StartWorker
) -> None:
    with transaction.atomic():
        (kept,) = create_jobs(1, prefix="kept")
        tasks.record_job.enqueue(job_id=kept)
    with pytest.raises(RuntimeError), transaction.atomic():
        (dropped,) = create_jobs(1, prefix="dropped")
        tasks.record_job.enqueue(job_id=dropped)
        raise RuntimeError("roll back")
    assert get_publisher().flush(10)

    start_worker("--concurrency", "2")
    wait_for(all_done(1))
    time.sleep(1)  # room for a wrong second delivery to show up
    assert done_counts() == [1]
    assert run_count() == 1
    published = topic_messages(kafka.job_topic, expect=1)
    assert [m.job_id for m in published] == [kept]


def test_aborted_kafka_transaction_never_reaches_the_worker(
    kafka: KafkaNames, start_worker: StartWorker
) -> None:
    aborted, committed = create_jobs(2)
    producer = Producer(client_config(**{"transactional.id": f"t-{uuid.uuid4().hex}"}))
    producer.init_transactions(10)
    for job_id, commit in ((aborted, False), (committed, True)):
        message = JobMessage(
            job_id=job_id,
            task_path="tests.queueing.tasks.record_job",
            kwargs={"job_id": job_id},
        ).stamped()
        producer.begin_transaction()
        producer.produce(
            kafka.job_topic,
            key=job_id.encode(),
            value=message.encode_value(),
            headers=message.headers(),
            partition=0,
        )
        producer.flush(10)
        if commit:
            producer.commit_transaction(10)
        else:
            producer.abort_transaction(10)

    start_worker()
    wait_for(lambda: job_counts().get("done", 0) == 1)
    time.sleep(1)
    assert job_counts() == {"done": 1, "queued": 1}
    assert run_count() == 1


def test_two_workers_share_partitions_and_survive_one_stopping(
    kafka: KafkaNames, start_worker: StartWorker
) -> None:
    with transaction.atomic():
        ids = create_jobs(120)
        for job_id in ids:
            tasks.record_job.enqueue(job_id=job_id, sleep=0.1)
    first = start_worker("--concurrency", "2")
    second = start_worker("--concurrency", "2")

    def log(worker: subprocess.Popen) -> str:
        return Path(worker.log_path).read_text()  # type: ignore[attr-defined]

    # Both members hold partitions before one of them leaves.
    wait_for(lambda: "assigned test-jobs" in log(first), timeout=60)
    wait_for(lambda: "assigned test-jobs" in log(second), timeout=60)
    wait_for(lambda: job_counts().get("done", 0) >= 20, timeout=60)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=40) == 0
    wait_for(all_done(120), timeout=90)
    assert done_counts() == [1] * 120
    assert "revoked" in log(first)


@pytest.mark.slow
def test_sigkill_at_several_points_loses_no_job_and_finishes_each_once(
    kafka: KafkaNames, start_worker: StartWorker
) -> None:
    count = 200
    with transaction.atomic():
        ids = create_jobs(count)
        for job_id in ids:
            tasks.record_job.enqueue(job_id=job_id, sleep=0.1)
    for kill_after in (0.8, 1.5, 2.5):
        worker = start_worker("--concurrency", "4")
        time.sleep(kill_after)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    assert job_counts().get("done", 0) < count, "the kills came too late to matter"
    start_worker("--concurrency", "4")
    wait_for(all_done(count), timeout=120)
    assert done_counts() == [1] * count
    # Redelivered jobs started again, but their effect happened once.
    assert run_count() >= count


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("USE_EXTERNAL_SERVICES") == "1",
    reason="stops and starts the local broker, which an external one is not",
)
def test_jobs_enqueued_while_the_broker_is_down_are_published_by_the_reconciler(
    kafka: KafkaNames, start_worker: StartWorker
) -> None:
    infra = PROJECT_ROOT / "infra" / "kafka.sh"
    subprocess.run(["bash", str(infra), "stop"], check=True, capture_output=True)
    try:
        # A web process commits jobs and exits before it could publish them.
        script = (
            "from django.db import transaction\n"
            "from tests.queueing import tasks\n"
            "with transaction.atomic():\n"
            "    for job_id in tasks.create_jobs(10, prefix='offline'):\n"
            "        tasks.record_job.enqueue(job_id=job_id)\n"
        )
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", script],
            cwd=PROJECT_ROOT,
            env=subprocess_env(kafka),
            check=True,
            timeout=60,
        )
        assert job_counts() == {"queued": 10}
    finally:
        subprocess.run(["bash", str(infra), "start"], check=True, capture_output=True)
    start_worker(
        QUEUE_RECONCILERS="tests.queueing.tasks.republish_stale",
        QUEUE_RECONCILE_AFTER_SECONDS="1",
        QUEUE_RECONCILE_INTERVAL_SECONDS="1",
    )
    wait_for(all_done(10), timeout=90)
    assert done_counts() == [1] * 10


def test_transient_failures_are_retried_until_success(
    kafka: KafkaNames, start_worker: StartWorker
) -> None:
    with transaction.atomic():
        (job_id,) = create_jobs(1)
        tasks.flaky_job.enqueue(job_id=job_id, failures=2)
    start_worker()
    wait_for(all_done(1), timeout=60)
    assert run_count() == 3
    retries = topic_messages(kafka.retry_topic, expect=2)
    assert [m.attempt for m in retries] == [2, 3]
    assert {m.error_code for m in retries} == {"upstream_busy"}


def test_exhausted_job_is_dead_lettered_and_replay_runs_it(
    kafka: KafkaNames,
    start_worker: StartWorker,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.QUEUE_MAX_ATTEMPTS = 3
    with transaction.atomic():
        (job_id,) = create_jobs(1)
        tasks.always_transient_job.enqueue(job_id=job_id)
    start_worker()
    dead = wait_for(
        lambda: topic_messages(kafka.dead_letter_topic, expect=1, timeout=2), timeout=60
    )
    (letter,) = dead  # type: ignore[misc]
    assert (letter.job_id, letter.attempt, letter.error_code) == (
        job_id,
        3,
        "upstream_down",
    )
    assert letter.error_message == "upstream down"
    assert run_count() == 3
    assert job_counts() == {"queued": 1}

    replay = subprocess.run(
        [sys.executable, "manage.py", "replay_dead_letters"],
        cwd=PROJECT_ROOT,
        env=subprocess_env(kafka),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert replay.returncode == 0, replay.stderr
    assert "replayed 1 dead letter" in replay.stdout
    wait_for(all_done(1), timeout=60)
    # Replaying again finds nothing new: the replay group committed its offset.
    again = subprocess.run(
        [sys.executable, "manage.py", "replay_dead_letters"],
        cwd=PROJECT_ROOT,
        env=subprocess_env(kafka),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "replayed 0 dead letter" in again.stdout


def test_permanent_error_fails_at_once(
    kafka: KafkaNames, start_worker: StartWorker
) -> None:
    with transaction.atomic():
        (job_id,) = create_jobs(1)
        tasks.permanent_job.enqueue(job_id=job_id)
        (marker,) = create_jobs(1, prefix="marker")
        tasks.record_job.enqueue(job_id=marker)
    start_worker()
    wait_for(lambda: run_count() >= 2 and job_counts().get("done") == 1, timeout=60)
    time.sleep(1.5)
    assert run_count() == 2
    assert topic_messages(kafka.retry_topic, expect=0, timeout=2) == []
    assert topic_messages(kafka.dead_letter_topic, expect=0, timeout=2) == []


@pytest.mark.slow
def test_job_longer_than_max_poll_interval_completes_without_rebalance(
    kafka: KafkaNames, start_worker: StartWorker
) -> None:
    with transaction.atomic():
        (job_id,) = create_jobs(1)
        tasks.record_job.enqueue(job_id=job_id, sleep=9)
    worker = start_worker(
        KAFKA_MAX_POLL_INTERVAL_MS="6000", KAFKA_SESSION_TIMEOUT_MS="6000"
    )
    wait_for(all_done(1), timeout=60)
    time.sleep(0.5)
    log = Path(worker.log_path).read_text()  # type: ignore[attr-defined]
    assert log.count("assigned") == 1, log
    assert "revoked" not in log and "lost" not in log
    assert run_count() == 1


def test_sigterm_lets_a_running_job_finish(
    kafka: KafkaNames, start_worker: StartWorker
) -> None:
    with transaction.atomic():
        (job_id,) = create_jobs(1)
        tasks.record_job.enqueue(job_id=job_id, sleep=2)
    worker = start_worker()
    wait_for(lambda: run_count() == 1, timeout=30)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert done_counts() == [1]
    # Its offset was committed: a new worker in the group does not run it again.
    start_worker()
    time.sleep(4)
    assert run_count() == 1
