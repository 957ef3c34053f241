"""The task layer's settings, read when needed (never at import time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings


@dataclass(frozen=True)
class QueueSettings:
    brokers: str
    job_topic: str
    retry_topic: str
    dead_letter_topic: str
    partitions: int
    replication_factor: int
    consumer_group: str
    transactional_id_prefix: str
    client_config: dict[str, object]
    session_timeout_ms: int
    max_poll_interval_ms: int
    max_attempts: int
    retry_backoff_seconds: float
    retry_backoff_max_seconds: float
    reconcile_after_seconds: int
    reconcile_interval_seconds: int
    reconcilers: tuple[str, ...]
    lock_dir: str


def queue_settings() -> QueueSettings:
    import tempfile

    return QueueSettings(
        brokers=",".join(settings.KAFKA_BROKERS),
        job_topic=settings.KAFKA_JOB_TOPIC,
        retry_topic=settings.KAFKA_RETRY_TOPIC,
        dead_letter_topic=settings.KAFKA_DEAD_LETTER_TOPIC,
        partitions=settings.KAFKA_TOPIC_PARTITIONS,
        replication_factor=settings.KAFKA_REPLICATION_FACTOR,
        consumer_group=settings.KAFKA_CONSUMER_GROUP,
        transactional_id_prefix=settings.KAFKA_TRANSACTIONAL_ID_PREFIX,
        client_config=dict(getattr(settings, "KAFKA_CLIENT_CONFIG", {})),
        session_timeout_ms=settings.KAFKA_SESSION_TIMEOUT_MS,
        max_poll_interval_ms=settings.KAFKA_MAX_POLL_INTERVAL_MS,
        max_attempts=settings.QUEUE_MAX_ATTEMPTS,
        retry_backoff_seconds=settings.QUEUE_RETRY_BACKOFF_SECONDS,
        retry_backoff_max_seconds=settings.QUEUE_RETRY_BACKOFF_MAX_SECONDS,
        reconcile_after_seconds=settings.QUEUE_RECONCILE_AFTER_SECONDS,
        reconcile_interval_seconds=settings.QUEUE_RECONCILE_INTERVAL_SECONDS,
        reconcilers=tuple(getattr(settings, "QUEUE_RECONCILERS", ())),
        lock_dir=settings.QUEUE_LOCK_DIR
        or f"{tempfile.gettempdir()}/ai-cv-evaluator-slots",
    )


def client_config(**overrides: Any) -> dict[str, Any]:
    """librdkafka configuration shared by every client, plus `overrides`."""
    conf = queue_settings()
    return {"bootstrap.servers": conf.brokers, **conf.client_config, **overrides}
