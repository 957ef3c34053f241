"""Prometheus metrics of the task layer.

Exposed by the web app's `/metrics` and by each worker's metrics port.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
)
RUN_TIME_BUCKETS = (0.005, 0.05, 0.25, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

JOBS_ENQUEUED = Counter("queue_jobs_enqueued_total", "Jobs published to the broker.")
JOBS_STARTED = Counter("queue_jobs_started_total", "Jobs a worker started.")
JOBS_COMPLETED = Counter(
    "queue_jobs_completed_total", "Jobs that finished without error."
)
JOBS_FAILED = Counter(
    "queue_jobs_failed_total", "Jobs that failed for good, by error code.", ["code"]
)
JOBS_RETRIED = Counter(
    "queue_jobs_retried_total", "Jobs sent to the retry topic, by error code.", ["code"]
)
JOBS_DEAD_LETTERED = Counter(
    "queue_jobs_dead_lettered_total", "Jobs moved to the dead-letter topic.", ["code"]
)
JOBS_SKIPPED = Counter(
    "queue_jobs_skipped_total", "Messages skipped as malformed or for unknown tasks."
)
JOBS_REPUBLISHED = Counter(
    "queue_jobs_republished_total", "Jobs re-published by the reconciler."
)
PICKUP_LATENCY = Histogram(
    "queue_pickup_latency_seconds",
    "Time from the job's hand-off to the broker to its start in a worker.",
    buckets=LATENCY_BUCKETS,
)
RUN_TIME = Histogram(
    "queue_job_run_seconds", "Time a job's task took to run.", buckets=RUN_TIME_BUCKETS
)
IN_FLIGHT = Gauge("queue_jobs_in_flight", "Jobs running in this worker.")
CONSUMER_LAG = Gauge(
    "queue_consumer_lag",
    "Messages not yet consumed by the group, per partition.",
    ["topic", "partition"],
)
