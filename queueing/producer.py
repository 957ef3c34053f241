"""Publishing jobs with a transactional Kafka producer.

Each process gets a `transactional.id` that is stable across restarts and
unique among live processes: `<prefix>-<role>-<host>-<slot>`, where the slot is
the lowest free number among per-host lock files. A process restarted after a
crash takes its predecessor's slot, so `init_transactions` fences the dead
producer and aborts its open transaction.

Web requests never wait for the broker: `Publisher.submit` hands the message to
a background thread that publishes everything that is ready in one
transaction. If the broker is down the job simply stays `queued` in the
database and the reconciler publishes it later.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from confluent_kafka import KafkaError, KafkaException, Producer

from queueing import metrics
from queueing.conf import client_config, queue_settings
from queueing.messages import JobMessage

logger = logging.getLogger(__name__)

MAX_SLOTS = 1024
INIT_TIMEOUT_SECONDS = 10.0
COMMIT_TIMEOUT_SECONDS = 10.0


class SlotLock:
    """An exclusive, per-host slot number held for the life of the process."""

    def __init__(self, directory: str, name: str) -> None:
        self.directory = Path(directory)
        self.name = name
        self.slot: int | None = None
        self._file: IO[bytes] | None = None

    def acquire(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        for slot in range(MAX_SLOTS):
            handle = open(self.directory / f"{self.name}-{slot}.lock", "ab")  # noqa: SIM115
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self._file, self.slot = handle, slot
            return slot
        raise RuntimeError(f"all {MAX_SLOTS} producer slots for {self.name} are taken")

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file, self.slot = None, None


def transactional_id(role: str, slot: int) -> str:
    conf = queue_settings()
    host = os.environ.get("KAFKA_PRODUCER_HOST") or socket.gethostname()
    return f"{conf.transactional_id_prefix}-{role}-{host}-{slot}"


class TransactionalProducer:
    """A transactional producer that owns its slot and knows how to recover."""

    def __init__(self, role: str, **overrides: Any) -> None:
        conf = queue_settings()
        self.role = role
        self._lock = SlotLock(conf.lock_dir, f"{conf.transactional_id_prefix}-{role}")
        slot = self._lock.acquire()
        self.transactional_id = transactional_id(role, slot)
        self._config = client_config(
            **{
                "transactional.id": self.transactional_id,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 0,
                "transaction.timeout.ms": 60000,
                "socket.nagle.disable": True,
                "message.timeout.ms": 30000,
                **overrides,
            }
        )
        self._producer: Producer | None = None

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            producer = Producer(self._config)
            producer.init_transactions(INIT_TIMEOUT_SECONDS)
            self._producer = producer
            logger.info("producer %s ready", self.transactional_id)
        return self._producer

    def publish(
        self,
        messages: Iterable[tuple[str, JobMessage]],
        *,
        offsets: list[Any] | None = None,
        group_metadata: Any = None,
    ) -> None:
        """Write (topic, message) pairs, and optionally consumer offsets, atomically."""
        producer = self.producer
        producer.begin_transaction()
        try:
            for topic, message in messages:
                producer.produce(
                    topic,
                    key=message.job_id.encode(),
                    value=message.encode_value(),
                    headers=message.headers(),
                )
            if offsets:
                producer.send_offsets_to_transaction(
                    offsets, group_metadata, COMMIT_TIMEOUT_SECONDS
                )
            producer.commit_transaction(COMMIT_TIMEOUT_SECONDS)
        except KafkaException as exc:
            self._recover(exc)
            raise
        except BaseException:
            self._abort()
            raise

    def _recover(self, exc: KafkaException) -> None:
        error: KafkaError = exc.args[0]
        if error.fatal():
            # Fenced by a newer instance or otherwise unusable: start afresh.
            logger.warning("producer %s fatal error: %s", self.transactional_id, error)
            self._producer = None
        else:
            self._abort()

    def _abort(self) -> None:
        if self._producer is None:
            return
        try:
            self._producer.abort_transaction(COMMIT_TIMEOUT_SECONDS)
        except KafkaException as exc:
            logger.warning("abort failed on %s: %s", self.transactional_id, exc)
            self._producer = None

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None
        self._lock.release()


class Publisher:
    """Publishes submitted jobs from a background thread, batching what is ready."""

    MAX_BATCH = 500
    MAX_PENDING = 50_000
    MAX_BACKOFF_SECONDS = 5.0

    def __init__(self, role: str = "publisher") -> None:
        self.role = role
        self._cond = threading.Condition()
        self._pending: deque[JobMessage] = deque()
        self._busy = False
        self._pid = os.getpid()
        self._thread: threading.Thread | None = None
        self._producer: TransactionalProducer | None = None

    def submit(self, message: JobMessage) -> None:
        self._ensure_thread()
        with self._cond:
            if len(self._pending) >= self.MAX_PENDING:
                dropped = self._pending.popleft()
                logger.warning(
                    "publish buffer full; job %s left for the reconciler",
                    dropped.job_id,
                )
            self._pending.append(message.stamped())
            self._cond.notify()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is published; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def _ensure_thread(self) -> None:
        if self._pid != os.getpid():
            # Forked (for example by gunicorn): the parent's thread and producer
            # do not exist here.
            self.__init__(self.role)  # type: ignore[misc]
        if self._thread is None:
            with self._cond:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name=f"kafka-{self.role}", daemon=True
                    )
                    self._thread.start()

    def _take_batch(self) -> list[JobMessage]:
        with self._cond:
            while not self._pending:
                self._busy = False
                self._cond.notify_all()
                self._cond.wait()
            self._busy = True
            count = min(len(self._pending), self.MAX_BATCH)
            return [self._pending.popleft() for _ in range(count)]

    def _run(self) -> None:
        backoff = 0.1
        while True:
            batch = self._take_batch()
            topic = queue_settings().job_topic
            try:
                if self._producer is None:
                    self._producer = TransactionalProducer(self.role)
                self._producer.publish((topic, message) for message in batch)
            except (KafkaException, BufferError) as exc:
                logger.warning(
                    "publishing %d job(s) failed, retrying in %.1fs: %s",
                    len(batch),
                    backoff,
                    exc,
                )
                with self._cond:
                    self._pending.extendleft(reversed(batch))
                    while len(self._pending) > self.MAX_PENDING:
                        self._pending.pop()
                time.sleep(backoff)
                backoff = min(backoff * 2, self.MAX_BACKOFF_SECONDS)
                continue
            except Exception:
                logger.exception("unexpected error publishing %d job(s)", len(batch))
                time.sleep(backoff)
                continue
            backoff = 0.1
            metrics.JOBS_ENQUEUED.inc(len(batch))


_publisher: Publisher | None = None
_publisher_lock = threading.Lock()


def get_publisher() -> Publisher:
    global _publisher
    if _publisher is None:
        with _publisher_lock:
            if _publisher is None:
                _publisher = Publisher()
    return _publisher
