"""The consumer group's position and lag per partition (like `rpk group describe`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaException,
    TopicPartition,
)

from queueing.conf import client_config, queue_settings
from queueing.topics import BrokerUnavailable, admin_client


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    log_start: int
    log_end: int
    member_id: str = ""
    client_id: str = ""
    host: str = ""

    @property
    def lag(self) -> int:
        start = self.committed if self.committed is not None else self.log_start
        return max(0, self.log_end - start)


@dataclass
class GroupLag:
    group: str
    state: str
    members: int
    partitions: list[PartitionLag] = field(default_factory=list)

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)


def group_lag(
    *, group: str | None = None, topics: list[str] | None = None, timeout: float = 5.0
) -> GroupLag:
    conf = queue_settings()
    group = group or conf.consumer_group
    topics = topics or [conf.job_topic, conf.retry_topic, conf.dead_letter_topic]
    admin = admin_client()
    try:
        metadata = admin.list_topics(timeout=timeout)
        description = admin.describe_consumer_groups([group])[group].result(timeout)
        committed_result = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)]
        )[group].result(timeout)
    except KafkaException as exc:
        raise BrokerUnavailable(str(exc.args[0])) from exc

    committed = {
        (tp.topic, tp.partition): tp.offset
        for tp in committed_result.topic_partitions
        if tp.offset >= 0
    }
    owners: dict[tuple[str, int], tuple[str, str, str]] = {}
    for member in description.members:
        for tp in member.assignment.topic_partitions:
            owners[(tp.topic, tp.partition)] = (
                member.member_id,
                member.client_id,
                member.host,
            )

    report = GroupLag(
        group=group, state=str(description.state.name), members=len(description.members)
    )
    consumer = Consumer(client_config(**{"group.id": f"{group}-lag-probe"}))
    try:
        for topic in topics:
            topic_metadata = metadata.topics.get(topic)
            if topic_metadata is None:
                continue
            for partition in sorted(topic_metadata.partitions):
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout
                )
                member, client, host = owners.get((topic, partition), ("", "", ""))
                report.partitions.append(
                    PartitionLag(
                        topic=topic,
                        partition=partition,
                        committed=committed.get((topic, partition)),
                        log_start=low,
                        log_end=high,
                        member_id=member,
                        client_id=client,
                        host=host,
                    )
                )
    finally:
        consumer.close()
    return report


def dead_letter_count(*, timeout: float = 5.0, limit: int = 10_000) -> int:
    """How many dead letters wait to be replayed (at most `limit`).

    The messages are read, not inferred from offsets: Kafka transaction markers
    take offsets too. Reading starts where `replay_dead_letters` (consumer group
    `<group>-replay`) stopped, with `read_committed`, and commits nothing.
    """
    import time

    from confluent_kafka import KafkaError

    conf = queue_settings()
    topic = conf.dead_letter_topic
    replay_group = f"{conf.consumer_group}-replay"
    admin = admin_client()
    try:
        metadata = admin.list_topics(timeout=timeout)
        replayed = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(replay_group)]
        )[replay_group].result(timeout)
    except KafkaException as exc:
        raise BrokerUnavailable(str(exc.args[0])) from exc
    topic_metadata = metadata.topics.get(topic)
    if topic_metadata is None or topic_metadata.error is not None:
        return 0
    replayed_up_to = {
        tp.partition: tp.offset
        for tp in replayed.topic_partitions
        if tp.topic == topic and tp.offset >= 0
    }

    consumer = Consumer(
        client_config(
            **{
                "group.id": f"{conf.consumer_group}-dead-letter-probe",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            }
        )
    )
    count = 0
    try:
        start = []
        for partition in sorted(topic_metadata.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
            begin = max(low, replayed_up_to.get(partition, low))
            if begin < high:
                start.append(TopicPartition(topic, partition, begin))
        if not start:
            return 0
        consumer.assign(start)
        unfinished = {tp.partition for tp in start}
        deadline = time.monotonic() + timeout
        while unfinished and count < limit:
            if time.monotonic() > deadline:
                raise BrokerUnavailable("timed out reading the dead-letter topic")
            for message in consumer.consume(num_messages=500, timeout=0.2):
                error = message.error()
                if error is None:
                    count += 1
                elif error.code() == KafkaError._PARTITION_EOF:
                    unfinished.discard(message.partition())
                elif error.fatal():
                    raise BrokerUnavailable(error.str())
    except KafkaException as exc:
        raise BrokerUnavailable(str(exc.args[0])) from exc
    finally:
        consumer.close()
    return min(count, limit)
