from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from queueing.reconcile import reconcile_once


class Command(BaseCommand):
    help = "Re-publish jobs that are still queued after the threshold."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            default=None,
            help="Seconds; defaults to QUEUE_RECONCILE_AFTER_SECONDS.",
        )

    def handle(self, *args: Any, older_than: float | None, **options: Any) -> None:
        age = timedelta(seconds=older_than) if older_than is not None else None
        count = reconcile_once(older_than=age)
        self.stdout.write(f"re-published {count} job(s)")
