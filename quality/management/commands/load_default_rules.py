"""Load the default quality rules and dataset checks (idempotent)."""

from django.core.management.base import BaseCommand

from quality.services.defaults import defaults_load


class Command(BaseCommand):
    help = "Create the default quality rules and checks; existing ones (by name) are kept."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--reset", action="store_true", help="Overwrite existing defaults with shipped values."
        )

    def handle(self, *args, reset: bool, **options) -> None:
        loaded = defaults_load(reset=reset)
        self.stdout.write(
            f"Rules: {loaded.rules_created} created, {loaded.rules_updated} reset. "
            f"Checks: {loaded.checks_created} created, {loaded.checks_updated} reset."
        )
