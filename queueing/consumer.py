"""The worker: a consumer-group loop that runs tasks in threads.

One thread polls Kafka and hands messages to `concurrency` job threads
through a local queue, so a job that takes minutes never stops the loop from
polling (and never trips `max.poll.interval.ms`). When the local queue holds
enough work the loop pauses fetching, and resumes once it has drained to half.

Offsets are committed only after the job's task returned, which means its
database effect is committed, and only contiguously per partition: offset 7 is
not committed while 6 still runs. A crash therefore re-delivers at most the
jobs that were running or not yet committed; tasks make such duplicates
harmless (a job that already finished is skipped).

Failures: a transient error goes to the retry topic with the next attempt
number and a not-before time (exponential backoff with jitter); a job out of
attempts goes to the dead-letter topic with its error in headers. Either way
the move and the source offset commit are one Kafka transaction.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import json
import logging
import os
import queue
import random
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from django.db import connections
from django.utils.module_loading import import_string
from django_tasks.base import Task, TaskResult, TaskResultStatus

from config.logging import log_context
from queueing import metrics
from queueing.backend import build_context
from queueing.conf import client_config, queue_settings
from queueing.errors import error_code, is_transient
from queueing.messages import JobMessage, MalformedMessage
from queueing.producer import TransactionalProducer
from queueing.reconcile import Reconciler

logger = logging.getLogger(__name__)

TopicKey = tuple[str, int]
SWITCH_INTERVAL_SECONDS = 0.0005


class PartitionTracker:
    """Offsets of one partition in arrival order, and which of them are done.

    `point` is the offset to commit: one past the longest done prefix.
    """

    def __init__(self) -> None:
        self.offsets: deque[int] = deque()
        self.done: set[int] = set()
        self.highest = -1
        self.point: int | None = None
        self.committed: int | None = None

    def add(self, offset: int) -> bool:
        if offset <= self.highest:
            return False
        self.highest = offset
        self.offsets.append(offset)
        return True

    def finish(self, offset: int) -> None:
        self.done.add(offset)
        while self.offsets and self.offsets[0] in self.done:
            first = self.offsets.popleft()
            self.done.discard(first)
            self.point = first + 1

    def peek_point(self, also_done: set[int]) -> int | None:
        """The commit point if the offsets in `also_done` were done too."""
        point = self.point
        for offset in self.offsets:
            if offset not in self.done and offset not in also_done:
                break
            point = offset + 1
        return point

    def uncommitted_point(self) -> int | None:
        return self.point if self.point != self.committed else None


@dataclass
class Delivery:
    """One consumed message on its way through the worker."""

    topic: str
    partition: int
    offset: int
    message: JobMessage
    tracker: PartitionTracker
    error: BaseException | None = None
    skipped: bool = False

    @property
    def key(self) -> TopicKey:
        return (self.topic, self.partition)


@dataclass(order=True)
class _Delayed:
    due: float
    seq: int
    delivery: Delivery = field(compare=False)


_STOP_THREAD = None


def release_connections(*, failed: bool) -> None:
    """Close this thread's database connections that are broken or too old.

    Like Django's `close_old_connections` at the end of a request, but a
    connection that served a job without error is kept without resetting its
    health check, which would cost a round trip on every job.
    """
    for connection in connections.all(initialized_only=True):
        expired = (
            connection.close_at is not None and time.monotonic() >= connection.close_at
        )
        if failed or expired:
            connection.close_if_unusable_or_obsolete()


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter for the retry after `attempt`."""
    return random.uniform(0, min(cap, base * (2 ** (attempt - 1))))


class Worker:
    def __init__(
        self,
        *,
        concurrency: int = 4,
        group: str | None = None,
        poll_timeout: float = 0.02,
        shutdown_grace: float = 30.0,
        reconcile: bool = True,
        consumer_config: dict[str, Any] | None = None,
        max_local_queue: int | None = None,
    ) -> None:
        self.conf = queue_settings()
        self.concurrency = concurrency
        self.group = group or self.conf.consumer_group
        self.poll_timeout = poll_timeout
        self.shutdown_grace = shutdown_grace
        self.topics = [self.conf.job_topic, self.conf.retry_topic]
        self._consumer_overrides = consumer_config or {}
        self._reconciler = Reconciler() if reconcile else None
        # Fetched messages kept locally. Pausing a partition makes librdkafka
        # drop what it had prefetched and resuming refetches it, which takes a
        # while: the queue must be deep enough that the half left when fetching
        # resumes keeps every thread busy until new messages arrive.
        self.max_local_queue = max_local_queue or max(1000, concurrency * 250)

        self._stop = threading.Event()
        self._trackers: dict[TopicKey, PartitionTracker] = {}
        self._work: queue.Queue[Delivery | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._delayed: list[_Delayed] = []
        self._delayed_seq = 0
        self._paused_full = False
        self._paused_for_delay: set[TopicKey] = set()
        self._outcomes: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        self._pending_moves: list[tuple[str, Delivery, JobMessage]] = []
        self._outstanding = 0  # queued locally or running
        self._consumer: Consumer | None = None
        self._producer: TransactionalProducer | None = None

    # --- lifecycle ---------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        def handle(signum: int, frame: Any) -> None:
            if self._stop.is_set():
                logger.warning("second signal: exiting now")
                os._exit(1)
            logger.info("signal %s: finishing in-flight jobs, then stopping", signum)
            self.request_stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def run(self) -> None:
        # Job threads mostly wait on the database and the broker. With the
        # default 5 ms switch interval a thread whose reply has arrived can wait
        # that long for the GIL. Measured with `make bench`: pickup p50 2.7 ms
        # and p99 14-21 ms with 0.5 ms, 5.0 ms and 37-52 ms with the default.
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        consumer = Consumer(
            client_config(
                **{
                    "group.id": self.group,
                    "isolation.level": "read_committed",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "earliest",
                    "partition.assignment.strategy": "cooperative-sticky",
                    "fetch.wait.max.ms": 50,
                    "fetch.error.backoff.ms": 50,
                    "socket.nagle.disable": True,
                    "session.timeout.ms": self.conf.session_timeout_ms,
                    "max.poll.interval.ms": self.conf.max_poll_interval_ms,
                    "heartbeat.interval.ms": 1000,
                    "statistics.interval.ms": 5000,
                    "stats_cb": self._on_stats,
                    "on_commit": self._on_commit,
                    **self._consumer_overrides,
                }
            )
        )
        self._consumer = consumer
        self._producer = TransactionalProducer("worker")
        consumer.subscribe(
            self.topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self._threads = [
            threading.Thread(target=self._job_thread, name=f"job-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        for thread in self._threads:
            thread.start()
        # Everything loaded so far lives as long as the process: keep the
        # garbage collector from walking it again and again between jobs.
        gc.freeze()
        if self._reconciler:
            self._reconciler.start()
        logger.info(
            "worker consuming %s as group %s, concurrency %d",
            ",".join(self.topics),
            self.group,
            self.concurrency,
        )
        try:
            while not self._stop.is_set():
                self._step()
            self._drain()
        finally:
            if self._reconciler:
                self._reconciler.stop()
            consumer.close()
            self._producer.close()
            for _ in self._threads:
                self._work.put(_STOP_THREAD)
            logger.info("worker stopped")

    def _step(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        self._handle_outcomes()
        self._release_due()
        self._flow_control()
        if self._paused_full:
            # Serves callbacks and heartbeats. A message fetched before the
            # pause may still come: keep it, or its offset would be skipped.
            late = consumer.poll(self.poll_timeout)
            if late is not None:
                self._accept(late)
            return
        # poll() returns as soon as one message is there (consume() would wait
        # for a whole batch); then take whatever else is already fetched.
        first = consumer.poll(self.poll_timeout)
        if first is None:
            return
        self._accept(first)
        room = self.max_local_queue - self._outstanding
        if room > 0:
            for raw in consumer.consume(num_messages=room, timeout=0):
                self._accept(raw)

    def _drain(self) -> None:
        """Stop taking work, let running jobs finish within the grace period."""
        consumer = self._consumer
        assert consumer is not None
        assignment = consumer.assignment()
        if assignment:
            consumer.pause(assignment)
        self._delayed.clear()
        while True:
            try:
                queued = self._work.get_nowait()
            except queue.Empty:
                break
            if queued is not None:
                self._outstanding -= 1
        deadline = time.monotonic() + self.shutdown_grace
        while self._outstanding and time.monotonic() < deadline:
            consumer.poll(0.05)
            self._handle_outcomes()
        self._handle_outcomes()
        self._commit(asynchronous=False)
        if self._outstanding:
            logger.warning(
                "%d job(s) still running after the grace period; they will be "
                "redelivered",
                self._outstanding,
            )

    # --- consuming -----------------------------------------------------------

    def _accept(self, raw: Message) -> None:
        error = raw.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                logger.warning("consumer error: %s", error)
            return
        topic, partition, offset = raw.topic(), raw.partition(), raw.offset()
        if topic is None or partition is None or offset is None:
            return
        key = (topic, partition)
        tracker = self._trackers.get(key)
        if tracker is None or not tracker.add(offset):
            return
        try:
            message = JobMessage.decode(raw.value(), raw.headers())
        except MalformedMessage as exc:
            logger.error("skipping malformed message %s[%d]@%d: %s", *key, offset, exc)
            metrics.JOBS_SKIPPED.inc()
            tracker.finish(offset)
            return
        delivery = Delivery(topic, partition, offset, message, tracker)
        if message.not_before > time.time():
            self._delay(delivery)
        else:
            self._submit(delivery)

    def _submit(self, delivery: Delivery) -> None:
        self._outstanding += 1
        metrics.IN_FLIGHT.set(self._outstanding)
        self._work.put(delivery)

    def _delay(self, delivery: Delivery) -> None:
        """Hold a retry until its time; its partition waits, the job topic does not."""
        self._delayed_seq += 1
        heapq.heappush(
            self._delayed,
            _Delayed(delivery.message.not_before, self._delayed_seq, delivery),
        )
        if delivery.key not in self._paused_for_delay:
            self._paused_for_delay.add(delivery.key)
            self._consumer.pause([TopicPartition(*delivery.key)])  # type: ignore[union-attr]

    def _release_due(self) -> None:
        now = time.time()
        released: set[TopicKey] = set()
        while self._delayed and self._delayed[0].due <= now:
            delivery = heapq.heappop(self._delayed).delivery
            if self._trackers.get(delivery.key) is delivery.tracker:
                self._submit(delivery)
                released.add(delivery.key)
        waiting = {item.delivery.key for item in self._delayed}
        to_resume = [key for key in released if key not in waiting]
        for key in to_resume:
            self._paused_for_delay.discard(key)
        if to_resume and not self._paused_full:
            self._consumer.resume([TopicPartition(*key) for key in to_resume])  # type: ignore[union-attr]

    def _flow_control(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        if self._paused_full:
            full = self._outstanding > self.max_local_queue // 2
        else:
            full = self._outstanding >= self.max_local_queue
        if full == self._paused_full:
            return
        partitions = [
            tp
            for tp in consumer.assignment()
            if (tp.topic, tp.partition) not in self._paused_for_delay
        ]
        if partitions:
            if full:
                consumer.pause(partitions)
            else:
                consumer.resume(partitions)
        self._paused_full = full

    # --- running jobs (in the job threads) -------------------------------------

    def _job_thread(self) -> None:
        while True:
            delivery = self._work.get()
            if delivery is None:
                return
            if self._trackers.get(delivery.key) is not delivery.tracker:
                delivery.skipped = True  # its partition was revoked meanwhile
            else:
                self._run_job(delivery)
            self._outcomes.put(delivery)

    def _run_job(self, delivery: Delivery) -> None:
        message = delivery.message
        if message.attempt == 1 and not message.replayed and message.enqueued_at:
            metrics.PICKUP_LATENCY.observe(max(0.0, time.time() - message.enqueued_at))
        metrics.JOBS_STARTED.inc()
        started = time.perf_counter()
        with log_context(request_id=message.request_id or "-", job_id=message.job_id):
            try:
                task = import_string(message.task_path)
                if not isinstance(task, Task):
                    raise LookupError(f"{message.task_path} is not a task")
                self._call(task, message)
            except BaseException as exc:
                delivery.error = exc
            finally:
                release_connections(failed=delivery.error is not None)
        metrics.RUN_TIME.observe(time.perf_counter() - started)

    def _call(self, task: Task, message: JobMessage) -> None:
        result: TaskResult[Any] = TaskResult(
            task=task,
            id=message.job_id,
            status=TaskResultStatus.RUNNING,
            enqueued_at=None,
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=message.args,
            kwargs=message.kwargs,
            backend=task.backend,
            errors=[],
            worker_ids=[],
        )
        if task.takes_context:
            context = build_context(result, message, self.conf.max_attempts)
            task.call(context, *message.args, **message.kwargs)
        else:
            task.call(*message.args, **message.kwargs)

    # --- outcomes, retries, commits ---------------------------------------------

    def _handle_outcomes(self) -> None:
        while True:
            try:
                delivery = self._outcomes.get_nowait()
            except queue.Empty:
                break
            self._outstanding -= 1
            metrics.IN_FLIGHT.set(self._outstanding)
            if (
                delivery.skipped
                or self._trackers.get(delivery.key) is not delivery.tracker
            ):
                # The partition was revoked while the job ran: its new owner
                # decides; this worker commits nothing for it.
                continue
            move = self._outcome_move(delivery)
            if move is None:
                delivery.tracker.finish(delivery.offset)
            else:
                self._pending_moves.append(move)
        if self._pending_moves:
            self._commit_moves()
        self._commit()

    def _outcome_move(
        self, delivery: Delivery
    ) -> tuple[str, Delivery, JobMessage] | None:
        """Where a finished delivery's message goes next, if anywhere."""
        exc = delivery.error
        message = delivery.message
        if exc is None:
            metrics.JOBS_COMPLETED.inc()
            return None
        code = error_code(exc)
        with log_context(request_id=message.request_id or "-", job_id=message.job_id):
            return self._failure_move(delivery, exc, code)

    def _failure_move(
        self, delivery: Delivery, exc: BaseException, code: str
    ) -> tuple[str, Delivery, JobMessage] | None:
        message = delivery.message
        if not is_transient(exc):
            metrics.JOBS_FAILED.labels(code=code).inc()
            logger.warning("job %s failed (%s): %s", message.job_id, code, exc)
            return None
        failed = replace(message, error_code=code, error_message=str(exc)[:1000])
        if message.attempt >= self.conf.max_attempts:
            metrics.JOBS_FAILED.labels(code=code).inc()
            metrics.JOBS_DEAD_LETTERED.labels(code=code).inc()
            logger.error(
                "job %s dead-lettered after %d attempts (%s)",
                message.job_id,
                message.attempt,
                code,
            )
            return (self.conf.dead_letter_topic, delivery, failed)
        delay = backoff_seconds(
            message.attempt,
            self.conf.retry_backoff_seconds,
            self.conf.retry_backoff_max_seconds,
        )
        metrics.JOBS_RETRIED.labels(code=code).inc()
        logger.info(
            "job %s attempt %d failed (%s); retry in %.1fs",
            message.job_id,
            message.attempt,
            code,
            delay,
        )
        retry = replace(
            failed,
            attempt=message.attempt + 1,
            not_before=time.time() + delay,
            enqueued_at=time.time(),
        )
        return (self.conf.retry_topic, delivery, retry)

    def _commit_moves(self) -> None:
        """Publish retries/dead letters and commit their offsets in one transaction."""
        consumer, producer = self._consumer, self._producer
        assert consumer is not None and producer is not None
        moves = [
            move
            for move in self._pending_moves
            if self._trackers.get(move[1].key) is move[1].tracker
        ]
        moved: dict[TopicKey, set[int]] = {}
        for _, delivery, _ in moves:
            moved.setdefault(delivery.key, set()).add(delivery.offset)
        offsets = []
        for key, tracker in self._trackers.items():
            point = tracker.peek_point(moved.get(key, set()))
            if point is not None and point != tracker.committed:
                offsets.append(TopicPartition(key[0], key[1], point))
        try:
            producer.publish(
                [(topic, message) for topic, _, message in moves],
                offsets=offsets,
                group_metadata=consumer.consumer_group_metadata(),
            )
        except KafkaException as exc:
            # Nothing was written or committed; the moves stay pending.
            logger.warning("moving %d job(s) failed, will retry: %s", len(moves), exc)
            self._pending_moves = moves
            time.sleep(0.2)
            return
        self._pending_moves = []
        for _, delivery, _ in moves:
            delivery.tracker.finish(delivery.offset)
        for tp in offsets:
            self._trackers[(tp.topic, tp.partition)].committed = tp.offset

    def _commit(self, *, asynchronous: bool = True) -> None:
        offsets = []
        for (topic, partition), tracker in self._trackers.items():
            point = tracker.uncommitted_point()
            if point is not None:
                offsets.append(TopicPartition(topic, partition, point))
                tracker.committed = point
        if not offsets:
            return
        consumer = self._consumer
        assert consumer is not None
        try:
            if asynchronous:
                consumer.commit(offsets=offsets, asynchronous=True)
            else:
                consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            logger.warning("offset commit failed: %s", exc)
            self._forget_commits(offsets)

    def _on_commit(
        self, error: KafkaError | None, offsets: list[TopicPartition]
    ) -> None:
        if error is not None:
            logger.warning("offset commit failed: %s", error)
            self._forget_commits(offsets)

    def _forget_commits(self, offsets: list[TopicPartition]) -> None:
        """Let the next step commit these points again."""
        for tp in offsets:
            tracker = self._trackers.get((tp.topic, tp.partition))
            if tracker is not None and tracker.committed == tp.offset:
                tracker.committed = None

    # --- rebalancing ----------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._trackers[(tp.topic, tp.partition)] = PartitionTracker()
        logger.info("assigned %s", _describe(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = {(tp.topic, tp.partition) for tp in partitions}
        # Commit what finished; never what still runs.
        offsets = []
        for key in keys:
            tracker = self._trackers.get(key)
            point = tracker.uncommitted_point() if tracker else None
            if point is not None:
                offsets.append(TopicPartition(key[0], key[1], point))
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                logger.warning("commit on revoke failed: %s", exc)
        self._forget(keys)
        logger.info("revoked %s", _describe(partitions))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget({(tp.topic, tp.partition) for tp in partitions})
        logger.warning("lost %s", _describe(partitions))

    def _forget(self, keys: set[TopicKey]) -> None:
        for key in keys:
            self._trackers.pop(key, None)
            self._paused_for_delay.discard(key)
            # Another worker reports this partition's lag now.
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(key[0], str(key[1]))
        self._delayed = [d for d in self._delayed if d.delivery.key not in keys]
        heapq.heapify(self._delayed)

    # --- statistics -------------------------------------------------------------

    def _on_stats(self, raw: str) -> None:
        try:
            stats = json.loads(raw)
        except ValueError:
            return
        for topic_name, topic in stats.get("topics", {}).items():
            for partition_id, partition in topic.get("partitions", {}).items():
                lag = partition.get("consumer_lag", -1)
                if partition_id != "-1" and lag >= 0:
                    metrics.CONSUMER_LAG.labels(topic_name, partition_id).set(lag)


def _describe(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
