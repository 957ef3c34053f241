"""Throughput: jobs per second from the first enqueue to the last completion.

Several processes enqueue as fast as the real path allows (each job its own
database transaction, published after the commit), as many web workers
would; one process alone is bound by PostgreSQL's commit rate. Measured with
one worker process and with two, and the enqueue rate alone with no worker.
"""

from __future__ import annotations

import multiprocessing
import os
import time

from bench.harness import (
    bench_fixtures,
    enqueue_one,
    fresh_topics,
    wait_completed,
    worker_env,
    workers,
)


def _enqueuer(
    count: int, env: dict[str, str], start_at: float, out: multiprocessing.Queue
) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from queueing.producer import get_publisher

    user, cv_id, project_id = bench_fixtures()
    while time.time() < start_at:
        time.sleep(0.001)
    started = time.time()
    for _ in range(count):
        enqueue_one(user, cv_id, project_id)
    committed = time.time()
    get_publisher().flush(timeout=120)
    out.put((started, committed, time.time()))


def _enqueue(
    jobs: int, processes: int, env: dict[str, str]
) -> tuple[float, float, float]:
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = context.Queue()
    start_at = time.time() + 3.0  # every process set up before the clock starts
    procs = [
        context.Process(
            target=_enqueuer,
            args=(jobs // processes, env, start_at, results),
        )
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    spans = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    return (
        min(s[0] for s in spans),
        max(s[1] for s in spans),
        max(s[2] for s in spans),
    )


def run_with_workers(
    *, jobs: int, worker_count: int, enqueuers: int, concurrency: int = 8
) -> float:
    with (
        fresh_topics(f"tput{worker_count}") as topics,
        workers(topics, worker_count, concurrency),
    ):
        user, cv_id, project_id = bench_fixtures()
        # Warm up: every worker has joined the group and holds partitions.
        since = time.time()
        for _ in range(20 * worker_count):
            enqueue_one(user, cv_id, project_id)
        wait_completed(20 * worker_count, since, timeout=120)
        time.sleep(1)
        env = worker_env(topics)
        begin = time.time()
        started, _, _ = _enqueue(jobs, enqueuers, env)
        finished = wait_completed(jobs, begin, timeout=600)
    return jobs / (finished - started)


def run_enqueue_only(*, jobs: int, enqueuers: int) -> float:
    with fresh_topics("enqueue") as topics:
        started, _, published = _enqueue(jobs, enqueuers, worker_env(topics))
    return jobs / (published - started)
