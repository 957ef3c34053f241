from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from prometheus_client import start_http_server

from queueing.consumer import Worker
from queueing.topics import BrokerUnavailable, ensure_topics

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Consume jobs from Kafka and run their tasks until SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", type=int, default=None)
        parser.add_argument("--group", default=None, help="Consumer group id.")
        parser.add_argument(
            "--skip-topic-check",
            action="store_true",
            help="Do not create or check topics at start-up.",
        )
        parser.add_argument(
            "--no-reconcile",
            action="store_true",
            help="Do not re-publish stale queued jobs from this worker.",
        )
        parser.add_argument("--metrics-port", type=int, default=None)
        parser.add_argument("--shutdown-grace", type=float, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["skip_topic_check"]:
            try:
                report = ensure_topics()
            except BrokerUnavailable as exc:
                raise CommandError(f"Kafka broker unreachable: {exc}") from exc
            if not report.ok:
                raise CommandError("; ".join(report.errors))
        metrics_port = options["metrics_port"]
        if metrics_port is None:
            metrics_port = settings.WORKER_METRICS_PORT
        if metrics_port:
            start_http_server(metrics_port, addr=settings.WORKER_METRICS_ADDR)
            logger.info("worker metrics on port %d", metrics_port)
        worker = Worker(
            concurrency=options["concurrency"] or settings.WORKER_CONCURRENCY,
            group=options["group"],
            reconcile=not options["no_reconcile"],
            shutdown_grace=options["shutdown_grace"]
            or settings.WORKER_SHUTDOWN_GRACE_SECONDS,
        )
        worker.install_signal_handlers()
        worker.run()
