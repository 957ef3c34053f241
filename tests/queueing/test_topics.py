"""`ensure_topics` against the real broker."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from queueing.topics import admin_client, ensure_topics
from tests.conftest import KafkaNames

pytestmark = pytest.mark.kafka


def partition_counts(*topics: str) -> dict[str, int]:
    metadata = admin_client().list_topics(timeout=10)
    return {name: len(metadata.topics[name].partitions) for name in topics}


def test_ensure_topics_is_idempotent(kafka: KafkaNames) -> None:
    # The fixture created the three topics; a second run changes nothing.
    report = ensure_topics()
    assert report.ok
    assert report.created == [] and report.grown == []
    assert sorted(report.unchanged) == sorted(
        [kafka.job_topic, kafka.retry_topic, kafka.dead_letter_topic]
    )
    assert partition_counts(kafka.job_topic, kafka.dead_letter_topic) == {
        kafka.job_topic: 3,
        kafka.dead_letter_topic: 1,
    }


def test_ensure_topics_grows_partitions(kafka: KafkaNames, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KAFKA_TOPIC_PARTITIONS = 5
    out = StringIO()
    call_command("ensure_topics", stdout=out)
    assert f"grew {kafka.job_topic} from 3 to 5 partitions" in out.getvalue()
    assert partition_counts(kafka.job_topic, kafka.retry_topic) == {
        kafka.job_topic: 5,
        kafka.retry_topic: 5,
    }
    # Fewer partitions configured than exist: never shrinks.
    settings.KAFKA_TOPIC_PARTITIONS = 2
    assert ensure_topics().ok
    assert partition_counts(kafka.job_topic)[kafka.job_topic] == 5


def test_replication_mismatch_is_an_error(kafka: KafkaNames, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KAFKA_REPLICATION_FACTOR = 2
    with pytest.raises(CommandError, match="replication factor is 1, configured 2"):
        call_command("ensure_topics", stdout=StringIO())


def test_unreachable_broker_exits_non_zero(settings) -> None:  # type: ignore[no-untyped-def]
    settings.KAFKA_BROKERS = ["127.0.0.1:1"]
    with pytest.raises(CommandError, match="unreachable"):
        call_command("ensure_topics", "--timeout", "2", stdout=StringIO())
