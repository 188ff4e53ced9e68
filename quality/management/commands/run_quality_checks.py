"""Run dataset checks now and print a table: `manage.py run_quality_checks [--check NAME]`.

For CI and code review: `--now ISO` judges the data as of that time, `--json` prints one
machine-readable object, `--no-incidents` writes nothing (no runs, incidents or alerts). With
any of these the exit code says the outcome: 0 all pass (or skipped), 1 a check failed, 2 an
error (bad arguments, database down, a check that raised). The plain table keeps exit 0.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import timezone

from quality.models import QualityCheck
from quality.services.checks import checks_evaluate, checks_run, rule_rates_evaluate

EXIT_FAIL, EXIT_ERROR = 1, 2
STATUSES = ("pass", "fail", "skipped", "error")


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _parse_now(value: str | None) -> dt.datetime:
    if value is None:
        return timezone.now()
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--now: {value!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00Z).",
            returncode=EXIT_ERROR,
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _window(check: QualityCheck, now: dt.datetime) -> dict[str, Any] | None:
    """The event-time window the check looked at (freshness looks at the newest event only)."""
    if check.kind == "freshness":
        return None
    minutes = check.params.get("window_minutes", 1440 if check.kind == "funnel_sanity" else 60)
    start = now - dt.timedelta(minutes=minutes)
    return {"minutes": minutes, "start": start.isoformat(), "end": now.isoformat()}


def _outcomes(names: list[str] | None, now: dt.datetime, record: bool) -> list[dict[str, Any]]:
    if record:
        rows = [
            (
                run.quality_check,
                run.outcome,
                run.metric_value,
                run.message,
                run.details,
                run.duration_ms,
            )
            for run in checks_run(names, now=now)
        ]
    else:
        rows = [
            (check, r.outcome, r.metric, r.message, dict(r.details), ms)
            for check, r, ms in checks_evaluate(names, now=now)
        ]
    return [
        {
            "name": check.name,
            "kind": check.kind,
            "status": outcome,
            "metric": metric,
            "threshold": check.threshold,
            "window": _window(check, now),
            "message": message,
            "details": details,
            "duration_ms": round(duration_ms, 2),
        }
        for check, outcome, metric, message, details, duration_ms in rows
    ]


class Command(BaseCommand):
    help = "Run the enabled quality checks (or the named ones) and print their outcomes."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--check", action="append", dest="names", metavar="NAME")
        parser.add_argument(
            "--rules", action="store_true", help="Also evaluate rule failure rates."
        )
        parser.add_argument("--now", metavar="ISO", help="Judge the data as of this time.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument(
            "--no-incidents",
            action="store_true",
            help="Write nothing: no check runs, incidents or alerts.",
        )

    def handle(self, *args, names: list[str] | None, rules: bool, **options) -> None:
        strict = bool(options["json"] or options["no_incidents"] or options["now"])
        if rules and options["no_incidents"]:
            raise CommandError(
                "--rules opens incidents; not with --no-incidents.", returncode=EXIT_ERROR
            )
        now = _parse_now(options["now"])
        try:
            if names:
                missing = set(names) - set(
                    QualityCheck.objects.filter(name__in=names).values_list("name", flat=True)
                )
                if missing:
                    raise CommandError(
                        f"Unknown check(s): {', '.join(sorted(missing))}", returncode=EXIT_ERROR
                    )
            outcomes = _outcomes(names, now, record=not options["no_incidents"])
            rule_rates = rule_rates_evaluate(now) if rules else []
        except DatabaseError as exc:
            raise CommandError(f"database error: {exc}".strip(), returncode=EXIT_ERROR) from None
        counts = {s: sum(o["status"] == s for o in outcomes) for s in STATUSES}
        status = "error" if counts["error"] else "fail" if counts["fail"] else "pass"
        if options["json"]:
            summary = {"now": now.isoformat(), "status": status, "total": len(outcomes), **counts}
            document = {"checks": outcomes, "summary": summary, "rule_rates": rule_rates}
            self.stdout.write(json.dumps(document, indent=2, sort_keys=True))
        else:
            self._table(outcomes, counts["fail"], rule_rates)
        if strict and status != "pass":
            raise SystemExit(EXIT_ERROR if status == "error" else EXIT_FAIL)

    def _table(self, outcomes: list[dict[str, Any]], failed: int, rule_rates: list[dict]) -> None:
        header = ("check", "kind", "outcome", "metric", "threshold", "ms", "message")
        rows = [
            (
                o["name"],
                o["kind"],
                o["status"].upper(),
                _fmt(o["metric"]),
                _fmt(o["threshold"]),
                f"{o['duration_ms']:.1f}",
                o["message"][:70],
            )
            for o in outcomes
        ]
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        line = "  ".join(f"{{:<{width}}}" for width in widths)
        self.stdout.write(line.format(*header))
        self.stdout.write(line.format(*("-" * width for width in widths)))
        for row in rows:
            self.stdout.write(line.format(*row))
        self.stdout.write(f"\n{len(outcomes)} check(s) run, {failed} failing.")
        for entry in rule_rates:
            self.stdout.write(
                f"rule {entry['rule']}: {entry['rate']:.2%} of {entry['evaluated']} events"
            )
