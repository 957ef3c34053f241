from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluations.services import evaluation_rerun_failed


class Command(BaseCommand):
    help = "Queue failed evaluations to run again, oldest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--limit", type=int, default=None, help="Re-run at most this many jobs."
        )

    def handle(self, *args: Any, limit: int | None, **options: Any) -> None:
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1.")
        count = evaluation_rerun_failed(limit=limit)
        self.stdout.write(f"{count} failed evaluation(s) queued to run again.")
