"""Tasks the task-layer tests run: the queue knows nothing about evaluations.

Each job is a row in `queue_test_jobs`; finishing it is a guarded update
(`queued -> done`), the same shape as the application's status machine.
`queue_test_runs` records every start, so tests can tell redeliveries from
effects.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.db import connection, transaction
from django_tasks import task

from queueing.backend import KafkaTaskContext
from queueing.errors import PermanentError, TransientError

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_test_jobs (
    id text PRIMARY KEY,
    kind text NOT NULL DEFAULT 'record',
    status text NOT NULL DEFAULT 'queued',
    done_count integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE TABLE IF NOT EXISTS queue_test_runs (
    job_id text NOT NULL,
    attempt integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
TRUNCATE queue_test_jobs, queue_test_runs;
"""


def _record_start(job_id: str, attempt: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO queue_test_runs (job_id, attempt) VALUES (%s, %s)",
            [job_id, attempt],
        )


def _finish(job_id: str) -> bool:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE queue_test_jobs SET status = 'done', done_count = done_count + 1 "
            "WHERE id = %s AND status = 'queued'",
            [job_id],
        )
        return cursor.rowcount == 1


@task(takes_context=True, key_argument="job_id")
def record_job(context: KafkaTaskContext, job_id: str, sleep: float = 0.0) -> None:
    _record_start(job_id, context.attempt_number)
    if sleep:
        time.sleep(sleep)
    _finish(job_id)


@task(takes_context=True, key_argument="job_id")
def flaky_job(context: KafkaTaskContext, job_id: str, failures: int) -> None:
    _record_start(job_id, context.attempt_number)
    if context.attempt_number <= failures:
        raise TransientError("upstream busy", code="upstream_busy")
    _finish(job_id)


@task(takes_context=True, key_argument="job_id")
def always_transient_job(context: KafkaTaskContext, job_id: str) -> None:
    _record_start(job_id, context.attempt_number)
    if context.replayed:
        _finish(job_id)
        return
    raise TransientError("upstream down", code="upstream_down")


@task(takes_context=True, key_argument="job_id")
def permanent_job(context: KafkaTaskContext, job_id: str) -> None:
    _record_start(job_id, context.attempt_number)
    raise PermanentError("bad input", code="bad_input")


def republish_stale(older_than: timedelta) -> int:
    """The test jobs' reconciler (registered through QUEUE_RECONCILERS)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE queue_test_jobs SET published_at = now() "
            "WHERE status = 'queued' AND kind = 'record' "
            "AND coalesce(published_at, created_at) < now() - %s "
            "RETURNING id",
            [older_than],
        )
        ids = [row[0] for row in cursor.fetchall()]
        for job_id in ids:
            record_job.enqueue(job_id=job_id)
    return len(ids)


def create_jobs(count: int, *, kind: str = "record", prefix: str = "job") -> list[str]:
    ids = [f"{prefix}-{i}" for i in range(count)]
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO queue_test_jobs (id, kind) VALUES (%s, %s)",
            [(job_id, kind) for job_id in ids],
        )
    return ids


def job_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM queue_test_jobs GROUP BY status")
        return dict(cursor.fetchall())


def done_counts() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT done_count FROM queue_test_jobs ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def run_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM queue_test_runs")
        return int(cursor.fetchone()[0])
