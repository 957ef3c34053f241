"""Pickup latency: from the database commit to the task starting in a worker.

Jobs are enqueued one at a time through the real path (insert, commit,
publish from on_commit) with a short pause between them, so each is picked up
by an idle worker; the task records how long after the commit it started.
"""

from __future__ import annotations

import time

from django.db import connection

from bench.harness import (
    bench_fixtures,
    enqueue_one,
    fresh_topics,
    percentile,
    wait_completed,
    workers,
)


def run(*, jobs: int = 1000, warmup: int = 100, gap: float = 0.005) -> dict[str, float]:
    with fresh_topics("pickup") as topics, workers(topics, 1, concurrency=8):
        user, cv_id, project_id = bench_fixtures()
        since = time.time()
        for _ in range(warmup):
            enqueue_one(user, cv_id, project_id)
            time.sleep(gap)
        wait_completed(warmup, since, timeout=120)

        since = time.time()
        ids = []
        for _ in range(jobs):
            ids.append(enqueue_one(user, cv_id, project_id))
            time.sleep(gap)
        wait_completed(jobs, since, timeout=120)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (provenance->>'pickup_ms')::float FROM evaluations_evaluation "
                "WHERE id = ANY(%s::uuid[])",
                [ids],
            )
            latencies = [row[0] for row in cursor.fetchall()]
    return {
        "p50": percentile(latencies, 50),
        "p90": percentile(latencies, 90),
        "p99": percentile(latencies, 99),
        "max": max(latencies),
        "jobs": float(len(latencies)),
    }
