"""A stand-in for celery beat where there is none (`make demo` without Redis).

It runs every entry of CELERY_BEAT_SCHEDULE in this process on its own interval (the rollups,
the due quality checks, the rule-rate watch), so the demo stays fresh exactly as production
does with `celery beat` and a worker."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from analytics_site.celery import app


def _interval_seconds(schedule: object) -> float:
    if isinstance(schedule, int | float):
        return float(schedule)
    run_every = getattr(schedule, "run_every", None)
    return run_every.total_seconds() if run_every is not None else 60.0


class Command(BaseCommand):
    help = "Run the beat schedule in-process (use celery beat and a worker in production)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tick", type=float, default=5.0, help="Seconds between looks.")
        parser.add_argument("--once", action="store_true", help="Run every entry once and exit.")

    def handle(self, *args, tick: float, once: bool, **options) -> None:
        app.loader.import_default_modules()  # registers every app's tasks
        schedule = settings.CELERY_BEAT_SCHEDULE
        next_run = dict.fromkeys(schedule, 0.0)
        while True:
            now = time.monotonic()
            for name, entry in schedule.items():
                if now < next_run[name]:
                    continue
                next_run[name] = now + _interval_seconds(entry["schedule"])
                result = app.tasks[entry["task"]].apply()
                if result.failed():
                    self.stderr.write(f"{name}: {result.result!r}")
                else:
                    self.stdout.write(f"{name}: {result.result}")
            if once:
                return
            time.sleep(tick)
