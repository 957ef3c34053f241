"""Shared pieces of the benchmarks: fresh topics, workers, enqueuing, statistics."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BENCH_USER = "benchmark"


@dataclass(frozen=True)
class Topics:
    job: str
    retry: str
    dead_letter: str
    group: str

    def env(self) -> dict[str, str]:
        return {
            "KAFKA_JOB_TOPIC": self.job,
            "KAFKA_RETRY_TOPIC": self.retry,
            "KAFKA_DEAD_LETTER_TOPIC": self.dead_letter,
            "KAFKA_CONSUMER_GROUP": self.group,
        }


@contextmanager
def fresh_topics(name: str) -> Iterator[Topics]:
    """Topics and a consumer group used by one benchmark run only."""
    from queueing.topics import delete_topics, ensure_topics

    suffix = uuid.uuid4().hex[:8]
    topics = Topics(
        job=f"bench-{name}-{suffix}",
        retry=f"bench-{name}-{suffix}-retry",
        dead_letter=f"bench-{name}-{suffix}-dlq",
        group=f"bench-{name}-{suffix}",
    )
    saved = {key: getattr(settings, key) for key in topics.env()}
    for key, value in topics.env().items():
        setattr(settings, key, value)
    report = ensure_topics()
    if not report.ok:
        raise RuntimeError("; ".join(report.errors))
    try:
        yield topics
    finally:
        for key, value in saved.items():
            setattr(settings, key, value)
        delete_topics([topics.job, topics.retry, topics.dead_letter])


def worker_env(topics: Topics) -> dict[str, str]:
    env = dict(os.environ)
    env.update(topics.env())
    env.setdefault("LOG_LEVEL", "WARNING")
    # The reconciler would re-publish this benchmark's backlog; it has its own test.
    env["QUEUE_RECONCILERS"] = ""
    return env


@contextmanager
def workers(
    topics: Topics, count: int, concurrency: int
) -> Iterator[list[subprocess.Popen]]:
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_evaluation_worker",
                "--concurrency",
                str(concurrency),
                "--skip-topic-check",
                "--no-reconcile",
            ],
            cwd=PROJECT_ROOT,
            env=worker_env(topics),
        )
        for _ in range(count)
    ]
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()


def bench_fixtures() -> tuple[Any, str, str]:
    """The benchmark user and one CV and one project upload to point jobs at."""
    from django.contrib.auth import get_user_model

    from evaluations.models import Upload

    user, _ = get_user_model().objects.get_or_create(username=BENCH_USER)
    uploads = {}
    for kind in ("cv", "project"):
        upload = Upload.objects.filter(owner=user, kind=kind).first()
        if upload is None:
            upload = Upload.objects.create(
                owner=user,
                kind=kind,
                original_filename=f"bench-{kind}.txt",
                content_type="text/plain",
                size_bytes=5,
                sha256="0" * 64,
                file=f"bench/{kind}.txt",
                text="bench",
            )
        uploads[kind] = str(upload.id)
    return user, uploads["cv"], uploads["project"]


def enqueue_one(user: Any, cv_id: str, project_id: str) -> str:
    """The real enqueue path: insert the job, publish from on_commit."""
    from bench.tasks import noop_evaluation
    from evaluations.models import Evaluation

    opening_id = _default_opening_id()
    with transaction.atomic():
        evaluation = Evaluation.objects.create(
            owner=user, cv_id=cv_id, project_id=project_id, opening_id=opening_id
        )
        noop_evaluation.enqueue(evaluation_id=str(evaluation.id))
    return str(evaluation.id)


_opening_id: int | None = None


def _default_opening_id() -> int:
    global _opening_id
    if _opening_id is None:
        from evaluations.models import JobOpening

        _opening_id = JobOpening.objects.get(is_default=True).id
    return _opening_id


def count_completed(ids_since: float) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM evaluations_evaluation e "
            "JOIN auth_user u ON u.id = e.owner_id "
            "WHERE u.username = %s AND e.status = 'completed' "
            "AND e.created_at >= to_timestamp(%s)",
            [BENCH_USER, ids_since],
        )
        return int(cursor.fetchone()[0])


def wait_completed(expected: int, since: float, timeout: float) -> float:
    """Wait for `expected` jobs created after `since` to complete; returns when."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count_completed(since) >= expected:
            return time.time()
        time.sleep(0.05)
    raise TimeoutError(f"only {count_completed(since)}/{expected} jobs completed")


def delete_bench_jobs() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM evaluations_evaluation WHERE owner_id IN "
            "(SELECT id FROM auth_user WHERE username = %s)",
            [BENCH_USER],
        )


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
