from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queueing.topics import BrokerUnavailable, ensure_topics


class Command(BaseCommand):
    help = "Create the job, retry and dead-letter topics; report and fix drift."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=10.0)

    def handle(self, *args: Any, timeout: float, **options: Any) -> None:
        try:
            report = ensure_topics(timeout=timeout)
        except BrokerUnavailable as exc:
            raise CommandError(f"Kafka broker unreachable: {exc}") from exc
        for name in report.created:
            self.stdout.write(f"created {name}")
        for name, before, after in report.grown:
            self.stdout.write(f"grew {name} from {before} to {after} partitions")
        for name in report.unchanged:
            self.stdout.write(f"ok {name}")
        if not report.ok:
            raise CommandError("; ".join(report.errors))
