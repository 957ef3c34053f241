"""What the task layer relies on from Kafka, checked against the real broker."""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, Producer

from queueing.conf import client_config
from tests.conftest import KafkaNames


def read_all(topic: str, isolation: str, expected_end: int) -> list[bytes]:
    consumer = Consumer(
        client_config(
            **{
                "group.id": f"semantics-{uuid.uuid4().hex[:8]}",
                "isolation.level": isolation,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
    )
    consumer.subscribe([topic])
    seen: list[bytes] = []
    try:
        for _ in range(200):
            message = consumer.poll(0.1)
            if message is None or message.error():
                position = consumer.position(consumer.assignment())
                if position and sum(max(p.offset, 0) for p in position) >= expected_end:
                    break
                continue
            seen.append(message.value())
    finally:
        consumer.close()
    return seen


def test_read_committed_sees_committed_and_never_aborted_messages(
    kafka: KafkaNames,
) -> None:
    producer = Producer(
        client_config(**{"transactional.id": f"semantics-{uuid.uuid4().hex}"})
    )
    producer.init_transactions(10)

    producer.begin_transaction()
    producer.produce(kafka.job_topic, key=b"a", value=b"committed-1", partition=0)
    producer.commit_transaction(10)

    producer.begin_transaction()
    producer.produce(kafka.job_topic, key=b"b", value=b"aborted-1", partition=0)
    producer.flush(10)  # the message is in the log, inside an open transaction
    producer.abort_transaction(10)

    producer.begin_transaction()
    producer.produce(kafka.job_topic, key=b"c", value=b"committed-2", partition=0)
    producer.commit_transaction(10)

    # Three data messages and three transaction markers.
    committed = read_all(kafka.job_topic, "read_committed", expected_end=6)
    uncommitted = read_all(kafka.job_topic, "read_uncommitted", expected_end=6)
    assert committed == [b"committed-1", b"committed-2"]
    assert uncommitted == [b"committed-1", b"aborted-1", b"committed-2"]
