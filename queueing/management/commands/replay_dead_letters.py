from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from queueing.dead_letters import replay_dead_letters


class Command(BaseCommand):
    help = "Publish dead-lettered jobs to the job topic again, as first attempts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=None)

    def handle(self, *args: Any, limit: int | None, **options: Any) -> None:
        count = replay_dead_letters(limit=limit)
        self.stdout.write(f"replayed {count} dead letter(s)")
