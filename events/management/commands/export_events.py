"""Export stored events to JSON Lines, CSV or Parquet, streaming in keyset batches.

    python manage.py export_events --since 2024-01-01 --until 2024-02-01 --format parquet \
        --out january.parquet

--since/--until bound event time (or receipt time with --time-field received_at), half-open
[since, until); rows come in (time field, id) order. Memory stays bounded at any size.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from events.export_formats import EVENTS
from events.export_selectors import EventFilters, events_filtered
from events.management.export_command import ExportCommand
from events.schema import DEVICE_TYPES, EVENT_TYPES


class Command(ExportCommand):
    help = "Export stored events (jsonl, csv or parquet) to a file or stdout."
    kind = EVENTS

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--time-field",
            choices=("timestamp", "received_at"),
            default="timestamp",
            help="what --since/--until bound, and the export order (default: event time)",
        )
        parser.add_argument("--event-type", choices=sorted(EVENT_TYPES))
        parser.add_argument("--user-id")
        parser.add_argument("--session-id")
        parser.add_argument("--country")
        parser.add_argument("--device-type", choices=sorted(DEVICE_TYPES))

    def handle(self, *args: Any, **options: Any) -> None:
        by_receipt = options["time_field"] == "received_at"
        since, until = options["since"], options["until"]
        filters = EventFilters(
            since=None if by_receipt else since,
            until=None if by_receipt else until,
            received_since=since if by_receipt else None,
            received_until=until if by_receipt else None,
            event_type=options["event_type"],
            user_id=options["user_id"],
            session_id=options["session_id"],
            country=options["country"].upper() if options["country"] else None,
            device_type=options["device_type"],
        )
        self.export(events_filtered(filters), options["time_field"], options)
