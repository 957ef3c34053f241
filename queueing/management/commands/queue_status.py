from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queueing.lag import group_lag
from queueing.topics import BrokerUnavailable


class Command(BaseCommand):
    help = "Print the consumer group's offsets and lag per partition."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--group", default=None)

    def handle(self, *args: Any, group: str | None, **options: Any) -> None:
        try:
            report = group_lag(group=group)
        except BrokerUnavailable as exc:
            raise CommandError(f"Kafka broker unreachable: {exc}") from exc
        self.stdout.write(f"GROUP        {report.group}")
        self.stdout.write(f"STATE        {report.state}")
        self.stdout.write(f"MEMBERS      {report.members}")
        self.stdout.write(f"TOTAL-LAG    {report.total_lag}")
        self.stdout.write("")
        header = (
            f"{'TOPIC':<32} {'PARTITION':>9} {'CURRENT-OFFSET':>14} "
            f"{'LOG-START-OFFSET':>16} {'LOG-END-OFFSET':>14} {'LAG':>6}  MEMBER-ID"
        )
        self.stdout.write(header)
        for p in report.partitions:
            current = "-" if p.committed is None else str(p.committed)
            self.stdout.write(
                f"{p.topic:<32} {p.partition:>9} {current:>14} {p.log_start:>16} "
                f"{p.log_end:>14} {p.lag:>6}  {p.member_id or '-'}"
            )
