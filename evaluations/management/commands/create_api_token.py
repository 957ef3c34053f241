from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from evaluations.services import api_token_create


class Command(BaseCommand):
    help = "Create the user if needed and print an API token key (and nothing else)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument(
            "--staff", action="store_true", help="Let the user sign in to the admin."
        )

    def handle(self, *args: Any, username: str, staff: bool, **options: Any) -> None:
        self.stdout.write(api_token_create(username=username, staff=staff))
