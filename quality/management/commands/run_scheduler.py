"""A stand-in for celery beat where there is none (`make demo` without Redis): every N
seconds run the due quality checks and the rule-rate watch, the same work as the beat task."""

import time

from django.core.management.base import BaseCommand

from quality.services.checks import checks_run_due, rule_rates_evaluate


class Command(BaseCommand):
    help = "Run due quality checks in a loop (use celery beat in production)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--interval", type=float, default=60.0, help="Seconds between runs.")
        parser.add_argument("--once", action="store_true", help="Run once and exit.")

    def handle(self, *args, interval: float, once: bool, **options) -> None:
        while True:
            runs = checks_run_due()
            rule_rates_evaluate()
            if runs:
                summary = ", ".join(f"{r.quality_check.name}={r.outcome}" for r in runs)
                self.stdout.write(f"ran {len(runs)} check(s): {summary}")
            if once:
                return
            time.sleep(interval)
