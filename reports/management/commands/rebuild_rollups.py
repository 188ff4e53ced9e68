"""Rebuild the dashboard rollups from raw events."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from analytics_site.sql import rollup_safety_lag
from reports.services.rollups import rollups_rebuild


class Command(BaseCommand):
    help = "Rebuild rollups from raw events: all of them, or every bucket from --since on."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", help="UTC date YYYY-MM-DD; rebuild buckets from it on")
        parser.add_argument(
            "--no-safety-lag",
            action="store_true",
            help="Also fold events received in the last seconds (only when nothing is ingesting)",
        )

    def handle(self, *args, since: str | None, no_safety_lag: bool, **options) -> None:
        since_date = None
        if since:
            try:
                since_date = dt.date.fromisoformat(since)
            except ValueError as exc:
                raise CommandError(
                    f"--since must be a date like 2025-01-31, not {since!r}"
                ) from exc
        now = timezone.now()
        if no_safety_lag:
            now += rollup_safety_lag()
        run = rollups_rebuild(since=since_date, now=now)
        mark = run.watermark
        received_at = mark.received_at.isoformat() if mark.received_at else "-"
        self.stdout.write(
            self.style.SUCCESS(
                f"Rolled up {run.events} events in {run.seconds:.2f} s "
                f"(watermark txid {mark.txid} / {mark.pk}, received {received_at})"
            )
        )
