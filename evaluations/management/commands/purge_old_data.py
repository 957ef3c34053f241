from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluations.retention import retention_purge


class Command(BaseCommand):
    help = (
        "Delete finished evaluations older than N days, then uploads older than "
        "N days that no remaining evaluation uses, with their stored files."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Age in days (default: RETENTION_DAYS; 0 keeps everything).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count what would go."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Rows deleted per transaction (default: RETENTION_BATCH_SIZE).",
        )

    def handle(
        self,
        *args: Any,
        days: int | None,
        dry_run: bool,
        batch_size: int | None,
        **options: Any,
    ) -> None:
        days = settings.RETENTION_DAYS if days is None else days
        batch_size = settings.RETENTION_BATCH_SIZE if batch_size is None else batch_size
        if days < 0:
            raise CommandError("--days must be 0 (keep forever) or more.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if days == 0:
            self.stdout.write("Retention is off (0 days): data is kept forever.")
            return
        report = retention_purge(days=days, batch_size=batch_size, dry_run=dry_run)
        verb = "Would delete" if report.dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {report.evaluations} evaluation(s), {report.uploads} upload(s) "
            f"and {report.files} stored file(s) older than {days} day(s) "
            f"(before {report.cutoff:%Y-%m-%d %H:%M} UTC)."
        )
