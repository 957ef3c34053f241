"""Transactional ids: a restarted producer fences its dead predecessor."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException

from queueing.conf import client_config
from queueing.messages import JobMessage
from queueing.producer import TransactionalProducer
from tests.conftest import KafkaNames

pytestmark = pytest.mark.kafka


def read_committed(topic: str, *, seconds: float) -> list[bytes]:
    consumer = Consumer(
        client_config(
            **{
                "group.id": f"fence-{uuid.uuid4().hex[:8]}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
    )
    consumer.subscribe([topic])
    values = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                values.append(message.value())
    finally:
        consumer.close()
    return values


def test_restarted_producer_takes_the_slot_and_fences_the_old_one(
    kafka: KafkaNames,
) -> None:
    old = TransactionalProducer("web")
    old.producer.begin_transaction()
    old.producer.produce(kafka.job_topic, value=b"left open", partition=0)
    old.producer.flush(10)
    # The process dies with its transaction open: its slot lock is released.
    old._lock.release()

    new = TransactionalProducer("web")
    assert new.transactional_id == old.transactional_id
    message = JobMessage(job_id="after-restart", task_path="x.y").stamped()
    new.publish([(kafka.job_topic, message)])

    # The open transaction was aborted by the fencing, so it no longer holds
    # back read_committed consumers: the new message is readable at once.
    started = time.monotonic()
    values = read_committed(kafka.job_topic, seconds=5)
    assert values == [message.encode_value()]
    assert time.monotonic() - started < 10

    with pytest.raises(KafkaException) as fenced:
        old.producer.commit_transaction(10)
    assert fenced.value.args[0].fatal() or fenced.value.args[0].txn_requires_abort()
    new.close()


def test_live_producers_get_distinct_slots(kafka: KafkaNames) -> None:
    first = TransactionalProducer("web")
    second = TransactionalProducer("web")
    try:
        assert first.transactional_id != second.transactional_id
        assert first.transactional_id.endswith("-0")
        assert second.transactional_id.endswith("-1")
    finally:
        first.close()
        second.close()
