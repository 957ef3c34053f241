"""Re-publishing jobs whose publish never happened.

A job is written to the database first and published after the commit. If
the broker was down, or the process died between the two, the job stays
`queued` with no message. The application registers reconcilers in the
`QUEUE_RECONCILERS` setting: dotted paths to callables that take the age after
which a queued job counts as stale, re-enqueue those jobs and return how many.
This module runs them once (`reconcile_jobs` command) or periodically (inside
each worker). It knows nothing about what the jobs are.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from django.db import close_old_connections
from django.utils.module_loading import import_string

from queueing import metrics
from queueing.conf import queue_settings
from queueing.producer import get_publisher

logger = logging.getLogger(__name__)

ReconcilerFunc = Callable[[timedelta], int]


def reconcile_once(*, older_than: timedelta | None = None, flush: bool = True) -> int:
    """Run every registered reconciler once; returns the jobs re-published."""
    conf = queue_settings()
    age = (
        older_than
        if older_than is not None
        else timedelta(seconds=conf.reconcile_after_seconds)
    )
    total = 0
    for path in conf.reconcilers:
        reconciler: ReconcilerFunc = import_string(path)
        count = reconciler(age)
        if count:
            logger.info("%s re-published %d stale job(s)", path, count)
        total += count
    metrics.JOBS_REPUBLISHED.inc(total)
    if total and flush and not get_publisher().flush(timeout=30):
        logger.warning("re-published jobs are still waiting for the broker")
    return total


class Reconciler:
    """Runs `reconcile_once` every `QUEUE_RECONCILE_INTERVAL_SECONDS` in a thread."""

    def __init__(self, interval: float | None = None) -> None:
        self.interval = interval or queue_settings().reconcile_interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="reconciler", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                close_old_connections()
                reconcile_once(flush=False)
            except Exception:
                logger.exception("reconciler run failed")
            finally:
                close_old_connections()
