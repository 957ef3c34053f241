"""Replaying dead-lettered jobs onto the job topic."""

from __future__ import annotations

import logging
from dataclasses import replace

from confluent_kafka import Consumer, TopicPartition

from queueing.conf import client_config, queue_settings
from queueing.messages import JobMessage, MalformedMessage
from queueing.producer import TransactionalProducer

logger = logging.getLogger(__name__)


def replay_dead_letters(*, limit: int | None = None, idle_timeout: float = 3.0) -> int:
    """Move dead letters back to the job topic as fresh first attempts.

    Reads with a consumer group of its own (`<group>-replay`), so each dead
    letter is replayed once; each batch of moves and its offsets are one
    transaction.
    """
    conf = queue_settings()
    consumer = Consumer(
        client_config(
            **{
                "group.id": f"{conf.consumer_group}-replay",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
    )
    consumer.subscribe([conf.dead_letter_topic])
    producer = TransactionalProducer("replay")
    replayed = 0
    try:
        while limit is None or replayed < limit:
            want = 100 if limit is None else min(100, limit - replayed)
            raw = consumer.consume(num_messages=want, timeout=idle_timeout)
            batch = [m for m in raw if m.error() is None]
            if not batch:
                break
            moves = []
            offsets: dict[tuple[str, int], int] = {}
            for message in batch:
                topic, partition, offset = (
                    message.topic(),
                    message.partition(),
                    message.offset(),
                )
                if topic is None or partition is None or offset is None:
                    continue
                offsets[(topic, partition)] = offset + 1
                try:
                    job = JobMessage.decode(message.value(), message.headers())
                except MalformedMessage as exc:
                    logger.error("dropping malformed dead letter: %s", exc)
                    continue
                moves.append(
                    (
                        conf.job_topic,
                        replace(
                            job,
                            attempt=1,
                            replayed=True,
                            not_before=0.0,
                            error_code="",
                            error_message="",
                        ).stamped(),
                    )
                )
            producer.publish(
                moves,
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                group_metadata=consumer.consumer_group_metadata(),
            )
            replayed += len(moves)
    finally:
        consumer.close()
        producer.close()
    return replayed
