"""Make rows quarantined before ADR 0029 replayable through their protocol (ADR 0037).

    python manage.py quarantine_sources_infer          # counts only
    python manage.py quarantine_sources_infer --apply  # sets each recognised row's source

Such a row holds a Segment, PostHog or Snowplow message under `source = api`; its original's
shape says which protocol sent it. Rows of no single protocol's shape are counted and left.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from events import services


class Command(BaseCommand):
    help = "Give legacy quarantined protocol messages their protocol, so a replay translates them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--apply", action="store_true", help="write (default: count only)")

    def handle(self, *args: Any, **options: Any) -> None:
        counts = services.rejected_sources_infer(apply=options["apply"])
        verb = "set" if options["apply"] else "would set"
        for name, count in sorted(counts.items()):
            note = "" if name in services.SHAPE_UNKNOWN else f" ({verb})"
            self.stdout.write(f"{name}: {count}{note}")
