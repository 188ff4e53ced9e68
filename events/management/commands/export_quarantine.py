"""Export quarantined (refused) events with their reasons, streaming in keyset batches.

    python manage.py export_quarantine --since 2024-01-01 --format csv --out refused.csv

--since/--until bound receipt time, half-open [since, until); rows come in (received_at, id)
order, each with the raw payload as sent, the reasons and the rule ids.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from events.export_formats import QUARANTINE
from events.export_selectors import RejectedFilters, rejected_events_filtered
from events.management.export_command import ExportCommand


class Command(ExportCommand):
    help = "Export quarantined events with their reasons (jsonl, csv or parquet)."
    kind = QUARANTINE

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--status", choices=("quarantined", "replayed"))
        parser.add_argument("--event-type")

    def handle(self, *args: Any, **options: Any) -> None:
        filters = RejectedFilters(
            since=options["since"],
            until=options["until"],
            status=options["status"],
            event_type=options["event_type"],
        )
        self.export(rejected_events_filtered(filters), "received_at", options)
