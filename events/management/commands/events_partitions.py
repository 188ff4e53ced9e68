"""`manage.py events_partitions status|prepare|maintain`: the events table's time partitions
(ADR 0021; docs/runbooks/events-partitioning.md)."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from analytics_site.sql import is_postgres
from events.partitioning.bounds import day_next
from events.partitioning.catalog import event_partitions, events_table_is_partitioned
from events.partitioning.convert import events_table_prepare
from events.services import event_partitions_maintain


class Command(BaseCommand):
    help = "Show, prepare (live conversion) or create ahead the events table's partitions."

    def add_arguments(self, parser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("status", help="list the partitions")
        prepare = actions.add_parser(
            "prepare", help="do the conversion's slow parts ahead, without blocking writes"
        )
        prepare.add_argument(
            "--days", type=int, default=1, help="migrate within this many days (the bound)"
        )
        prepare.add_argument("--batch", type=int, default=50_000, help="keys per transaction")
        actions.add_parser("maintain", help="create the partitions due ahead now")

    def handle(self, *args, action: str, **options) -> None:
        if not is_postgres():
            raise CommandError("partitions exist on PostgreSQL only")
        if action == "status":
            self._status()
        elif action == "prepare":
            self._prepare(options["days"], options["batch"])
        else:
            for name in event_partitions_maintain():
                self.stdout.write(f"created {name}")

    def _status(self) -> None:
        if not events_table_is_partitioned():
            self.stdout.write("events_event is a plain table (not converted yet)")
            return
        for partition in event_partitions():
            span = "DEFAULT" if partition.is_default else f"{partition.start} .. {partition.end}"
            self.stdout.write(f"{partition.name}: {span}")

    def _prepare(self, days: int, batch: int) -> None:
        if days < 1:
            raise CommandError("--days must be at least 1")
        bound = day_next(timezone.now() + dt.timedelta(days=days - 1))
        connection.ensure_connection()
        connection.set_autocommit(True)
        result = events_table_prepare(
            connection,
            bound=bound,
            batch=batch,
            on_batch=lambda last: self.stdout.write(f"keys claimed up to id {last}"),
        )
        if not result["prepared"]:
            self.stdout.write(f"nothing to do: {result['reason']}")
            return
        self.stdout.write(
            f"prepared: run `manage.py migrate events` before {bound.isoformat()} "
            "(the old table will hold every row received before then)"
        )
