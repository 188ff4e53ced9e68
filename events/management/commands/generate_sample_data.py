"""Generate realistic shop traffic into the database, or stream it to a running API.

    python manage.py generate_sample_data --events 1000 --seed 42
    python manage.py generate_sample_data --stream --rate 10 --duration 60 --url http://localhost:8000
    python manage.py generate_sample_data --events 100000 --scenario volume-drop

Timestamps end at --end (ISO-8601) or, without it, at the current time floored to the minute.
The same --seed, --events, --days and --end give identical data; event_ids depend on the seed
only, so a second run with the same seed adds nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from events.sample_data import SampleConfig, default_end
from events.sample_data.incident import history_config, items_ingest, scenario_hour
from events.sample_data.load import sample_data_load
from events.sample_data.scenarios import SCENARIOS
from events.sample_data.stream import sample_data_stream, stream_config


def _rate(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError("must be between 0 and 1")
    return number


def _end(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


class Command(BaseCommand):
    help = "Generate sample shop events into the database (or --stream them to the HTTP API)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--events", type=int, default=10_000, help="distinct events")
        parser.add_argument(
            "--seed",
            type=int,
            default=None,
            help="default 42; with --stream a new one per run, so live traffic is new traffic",
        )
        parser.add_argument("--days", type=int, default=7, help="spread over the last N days")
        parser.add_argument("--end", type=_end, help="ISO-8601 anchor (default: now, floored)")
        # 0.3%: under the product's 99.5% pass-rate SLO, so the demo starts without an incident.
        parser.add_argument("--bad-rate", type=_rate, default=0.003)
        parser.add_argument("--duplicate-rate", type=_rate, default=0.005)
        parser.add_argument("--late-rate", type=_rate, default=0.002)
        parser.add_argument(
            "--workers",
            type=int,
            default=min(2, os.cpu_count() or 1),
            help="processes (PostgreSQL)",
        )
        parser.add_argument("--chunk-events", type=int, default=250_000, help=argparse_hidden())
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
        parser.add_argument(
            "--scenario",
            choices=sorted(SCENARIOS),
            help="plant an incident in the last hour before --end: "
            + "; ".join(f"{name}: {SCENARIOS[name].description}" for name in sorted(SCENARIOS)),
        )
        stream = parser.add_argument_group("streaming through the HTTP API")
        stream.add_argument("--stream", action="store_true")
        stream.add_argument("--rate", type=float, default=10.0, help="events per second")
        stream.add_argument("--duration", type=float, default=60.0, help="seconds")
        stream.add_argument("--url", default="http://localhost:8000")
        stream.add_argument("--api-key", default=os.environ.get("INGEST_API_KEY"))
        stream.add_argument("--batch-size", type=int, default=1)

    def handle(self, *args, **options) -> None:
        rates = {
            "bad_rate": options["bad_rate"],
            "duplicate_rate": options["duplicate_rate"],
            "late_rate": options["late_rate"],
        }
        if options["stream"]:
            if options["scenario"]:
                raise CommandError("--scenario plants into the database; it needs no --stream.")
            self._stream(options, rates)
            return
        now = timezone.now()
        end = options["end"] or default_end(now)
        if end > now:
            raise CommandError("--end may not be in the future: generated events would be.")
        try:
            config = SampleConfig(
                events=options["events"],
                end=end,
                seed=42 if options["seed"] is None else options["seed"],
                days=options["days"],
                chunk_events=options["chunk_events"],
                **rates,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        scenario = options["scenario"]
        history = history_config(config) if scenario else config
        show = not options["quiet"] and sys.stderr.isatty()
        with tqdm(total=history.events, unit="ev", unit_scale=True, disable=not show) as bar:
            summary = sample_data_load(history, workers=options["workers"], on_progress=bar.update)
        self.stdout.write(
            f"anchor (end): {end.isoformat()}  days: {config.days}  seed: {config.seed}"
        )
        for line in summary.lines():
            self.stdout.write(line)
        if scenario:
            start = end - dt.timedelta(hours=1)
            outcomes = items_ingest(scenario_hour(config, scenario, start))
            counts = ", ".join(f"{status} {n:,}" for status, n in sorted(outcomes.items()))
            self.stdout.write(
                f"scenario {scenario} ({SCENARIOS[scenario].description}) planted in "
                f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC: {counts}"
            )

    def _stream(self, options: dict, rates: dict[str, float]) -> None:
        rate, duration, batch_size = options["rate"], options["duration"], options["batch_size"]
        if rate <= 0 or duration <= 0 or not 1 <= batch_size <= 1000:
            raise CommandError("--rate and --duration must be > 0 and --batch-size 1..1000")
        # Event ids are keyed by the seed: the default seed would re-send the ids `make demo`
        # loaded, and the server would answer "duplicate" to all of them.
        seed = options["seed"] if options["seed"] is not None else secrets.randbelow(2**31)
        config = stream_config(seed, rate, duration, **rates)
        self.stdout.write(
            f"streaming {rate:g} events/s for {duration:g} s to {options['url']}"
            + (f" in batches of {batch_size}" if batch_size > 1 else "")
            + f" (seed {seed})"
        )
        summary = sample_data_stream(
            config,
            url=options["url"],
            rate=rate,
            duration=duration,
            batch_size=batch_size,
            api_key=options["api_key"],
            out=self.stdout,
        )
        self.stdout.write(
            f"done: sent {summary.sent:,} in {summary.elapsed:.1f} s; "
            f"accepted {summary.accepted:,}, duplicates {summary.duplicates:,}, "
            f"rejected {summary.rejected:,}, errors {summary.errors:,}"
        )


def argparse_hidden() -> str:
    """Help text of --chunk-events: part of the data's identity, so tests pin it."""
    return "events per generated chunk (changes the data; keep the default)"
