"""Rules and checks to and from a YAML file, for version control and review:
`manage.py quality_config export|import|diff [--file PATH] [--prune]`.

Exit codes: 0 done (diff: nothing to change), 1 diff found changes, 2 error (bad file or entry:
the message names the rule or check and field, and nothing was applied).
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from quality.services.config import (
    QualityConfigError,
    quality_config_diff,
    quality_config_export,
    quality_config_import,
)

EXIT_CHANGES, EXIT_ERROR = 1, 2


class Command(BaseCommand):
    help = "Export, import or diff the quality rules and checks as YAML."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=("export", "import", "diff"))
        parser.add_argument(
            "--file", metavar="PATH", help="YAML file (default: standard output / input)."
        )
        parser.add_argument(
            "--prune",
            action="store_true",
            help="import/diff: also delete rules and checks that the file does not list.",
        )

    def handle(self, *args, action: str, file: str | None, prune: bool, **options) -> None:
        if action == "export":
            text = quality_config_export()
            if file:
                Path(file).write_text(text, encoding="utf-8")
                self.stdout.write(f"Wrote {file}.")
            else:
                self.stdout.write(text, ending="")
            return
        text = self._read(file)
        try:
            if action == "diff":
                changes = quality_config_diff(text, prune=prune)
            else:
                changes = quality_config_import(text, prune=prune)
        except QualityConfigError as exc:
            raise CommandError(str(exc), returncode=EXIT_ERROR) from None
        for change in changes:
            self.stdout.write(change.describe())
        verb = "would change" if action == "diff" else "changed"
        self.stdout.write(f"{len(changes)} rule(s)/check(s) {verb}.")
        if action == "diff" and changes:
            raise SystemExit(EXIT_CHANGES)

    def _read(self, file: str | None) -> str:
        if not file:
            return sys.stdin.read()
        try:
            return Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"--file: {exc}", returncode=EXIT_ERROR) from None
