"""Run dataset checks now and print a table: `manage.py run_quality_checks [--check NAME]`."""

from django.core.management.base import BaseCommand, CommandError

from quality.models import QualityCheck
from quality.services.checks import checks_run, rule_rates_evaluate


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


class Command(BaseCommand):
    help = "Run the enabled quality checks (or the named ones) and print their outcomes."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--check", action="append", dest="names", metavar="NAME")
        parser.add_argument(
            "--rules", action="store_true", help="Also evaluate rule failure rates."
        )

    def handle(self, *args, names: list[str] | None, rules: bool, **options) -> None:
        if names:
            missing = set(names) - set(
                QualityCheck.objects.filter(name__in=names).values_list("name", flat=True)
            )
            if missing:
                raise CommandError(f"Unknown check(s): {', '.join(sorted(missing))}")
        runs = checks_run(names)
        header = ("check", "kind", "outcome", "metric", "threshold", "ms", "message")
        rows = [
            (
                run.quality_check.name,
                run.quality_check.kind,
                run.outcome.upper(),
                _fmt(run.metric_value),
                _fmt(run.threshold),
                f"{run.duration_ms:.1f}",
                run.message[:70],
            )
            for run in runs
        ]
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        line = "  ".join(f"{{:<{width}}}" for width in widths)
        self.stdout.write(line.format(*header))
        self.stdout.write(line.format(*("-" * width for width in widths)))
        for row in rows:
            self.stdout.write(line.format(*row))
        failed = sum(run.outcome == "fail" for run in runs)
        self.stdout.write(f"\n{len(runs)} check(s) run, {failed} failing.")
        if rules:
            for entry in rule_rates_evaluate():
                self.stdout.write(
                    f"rule {entry['rule']}: {entry['rate']:.2%} of {entry['evaluated']} events"
                )
