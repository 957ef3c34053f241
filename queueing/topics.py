"""Creating the job, retry and dead-letter topics, and reporting drift."""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from queueing.conf import client_config, queue_settings

DAY_MS = 24 * 60 * 60 * 1000


class BrokerUnavailable(Exception):
    """The broker did not answer in time."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


@dataclass
class TopicReport:
    created: list[str] = field(default_factory=list)
    grown: list[tuple[str, int, int]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def topic_specs() -> list[TopicSpec]:
    conf = queue_settings()
    durable = {"cleanup.policy": "delete"}
    if conf.replication_factor > 1:
        durable["min.insync.replicas"] = str(min(2, conf.replication_factor))
    return [
        TopicSpec(
            conf.job_topic,
            conf.partitions,
            conf.replication_factor,
            {**durable, "retention.ms": str(7 * DAY_MS)},
        ),
        TopicSpec(
            conf.retry_topic,
            conf.partitions,
            conf.replication_factor,
            {**durable, "retention.ms": str(7 * DAY_MS)},
        ),
        TopicSpec(
            conf.dead_letter_topic,
            1,
            conf.replication_factor,
            {**durable, "retention.ms": str(30 * DAY_MS)},
        ),
    ]


def admin_client() -> AdminClient:
    return AdminClient(client_config(**{"socket.timeout.ms": 5000}))


def ensure_topics(
    specs: list[TopicSpec] | None = None, *, timeout: float = 10.0
) -> TopicReport:
    """Create missing topics and grow short ones; never shrink or re-replicate."""
    specs = specs if specs is not None else topic_specs()
    admin = admin_client()
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerUnavailable(str(exc.args[0])) from exc

    report = TopicReport()
    to_create = []
    to_grow = []
    for spec in specs:
        existing = metadata.topics.get(spec.name)
        if existing is None or existing.error is not None:
            to_create.append(
                NewTopic(
                    spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=spec.replication_factor,
                    config=spec.config,
                )
            )
            continue
        partitions = existing.partitions
        replication = len(next(iter(partitions.values())).replicas) if partitions else 0
        if replication != spec.replication_factor:
            report.errors.append(
                f"{spec.name}: replication factor is {replication}, "
                f"configured {spec.replication_factor} (change it with a "
                "partition reassignment; this command does not)"
            )
        if len(partitions) < spec.partitions:
            to_grow.append(NewPartitions(spec.name, spec.partitions))
            report.grown.append((spec.name, len(partitions), spec.partitions))
        elif replication == spec.replication_factor:
            report.unchanged.append(spec.name)

    for name, future in (admin.create_topics(to_create) if to_create else {}).items():
        try:
            future.result(timeout)
            report.created.append(name)
        except KafkaException as exc:
            if exc.args[0].name() == "TOPIC_ALREADY_EXISTS":
                report.unchanged.append(name)
            else:
                report.errors.append(f"{name}: {exc.args[0].str()}")
    for name, future in (admin.create_partitions(to_grow) if to_grow else {}).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            report.errors.append(f"{name}: {exc.args[0].str()}")
    return report


def delete_topics(names: list[str], *, timeout: float = 10.0) -> None:
    """Delete topics, waiting for the broker; topics already gone are fine."""
    admin = admin_client()  # must outlive the futures it answers
    futures = admin.delete_topics(names, operation_timeout=timeout)
    for future in futures.values():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if exc.args[0].name() != "UNKNOWN_TOPIC_OR_PART":
                raise


def broker_reachable(timeout: float = 2.0) -> tuple[bool, str]:
    """Whether the broker serves metadata within `timeout`, with a short detail."""
    try:
        metadata = admin_client().list_topics(timeout=timeout)
    except KafkaException as exc:
        return False, str(exc.args[0].str())
    return True, f"{len(metadata.brokers)} broker(s)"
