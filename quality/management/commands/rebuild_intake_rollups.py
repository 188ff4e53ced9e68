"""Rebuild the intake rollups (Data quality and Live pages) from raw events."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from analytics_site.sql import rollup_safety_lag
from quality.services.intake import intake_rebuild


class Command(BaseCommand):
    help = "Empty the intake rollups and fold every stored and rejected event again."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--no-safety-lag",
            action="store_true",
            help="Also fold rows received in the last seconds (only when nothing is ingesting)",
        )

    def handle(self, *args, no_safety_lag: bool, **options) -> None:
        now = timezone.now()
        if no_safety_lag:
            now += rollup_safety_lag()
        run = intake_rebuild(now=now)
        self.stdout.write(
            self.style.SUCCESS(
                f"Folded {run.rows} rows in {run.batches} batches, {run.seconds:.2f} s"
            )
        )
