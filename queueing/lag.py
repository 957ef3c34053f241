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
