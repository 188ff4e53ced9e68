"""manage.py forget_user ID [--anonymous-id ID ...] [--enqueue]: erase a person (ADR 0007)."""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError

from governance.services.erasure import (
    ErasureInputError,
    erasure_request_create,
    erasure_request_run,
)


class Command(BaseCommand):
    help = "Erase a person's events and quarantined payloads and correct every rollup."

    def add_arguments(self, parser) -> None:
        parser.add_argument("user_id")
        parser.add_argument("--anonymous-id", action="append", default=[], dest="anonymous_ids")
        parser.add_argument(
            "--enqueue", action="store_true", help="Hand it to a Celery worker instead."
        )

    def handle(self, *args, **options) -> None:
        try:
            request = erasure_request_create(
                user_id=options["user_id"],
                anonymous_ids=options["anonymous_ids"],
                via="command",
                requested_by_label=f"command ({getpass.getuser()})",
                enqueue=options["enqueue"],
            )
        except ErasureInputError as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from exc
        if options["enqueue"]:
            self.stdout.write(f"erasure request {request.pk} queued")
            return
        done = erasure_request_run(request.pk)
        self.stdout.write(
            f"erasure request {request.pk} {done.status}: {done.events_deleted} events, "
            f"{done.quarantined_deleted} rejected events, {done.users_forgotten} user keys"
        )
