"""A batch whose commit is delayed past the rollups' safety lag while other traffic moves the
watermark on: once it commits it must reach every dashboard (issue 14, item 1)."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from events.facade import EVENTS_TABLE
from events.models import Event
from tests.faults.driver import Driver, event_new
from tests.faults.stack import FOLD_INTERVAL_SECONDS, SAFETY_LAG_SECONDS
from tests.faults.stack_fixture import recovered, stack  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.faults, pytest.mark.postgres]


def _hold_event_id(holder: psycopg.Connection, event_id: str) -> None:
    """Insert a copy of a stored row under `event_id`, uncommitted: the server's insert of the
    same event_id waits on the unique index until this transaction ends (a lock holding a
    batch, as seen in production)."""
    columns = [
        row[0]
        for row in holder.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "AND column_name NOT IN ('id', 'event_id') ORDER BY ordinal_position",
            [EVENTS_TABLE],
        )
    ]
    names = ", ".join(columns)
    holder.execute(
        f"INSERT INTO {EVENTS_TABLE} (event_id, {names}) "  # noqa: S608
        f"SELECT %s, {names} FROM {EVENTS_TABLE} ORDER BY id LIMIT 1",
        [event_id],
    )


def test_commit_delayed_past_the_safety_lag(stack):  # noqa: F811
    """A batch held by a lock for longer than the safety lag plus two folds, then committed
    and acknowledged: the dashboards count it, with nobody running a rebuild."""
    settings = connection.settings_dict
    batch = [event_new(random.Random(77 + n)) for n in range(10)]
    with Driver(stack.web_port) as driver:
        time.sleep(4)  # rows to copy, and a first fold
        with psycopg.connect(
            host=settings["HOST"] or "127.0.0.1",
            port=settings["PORT"] or 5432,
            user="postgres",
            dbname=settings["NAME"],
        ) as holder:
            _hold_event_id(holder, batch[0]["event_id"])
            held = threading.Thread(target=driver.send, args=(batch, True))
            held.start()
            time.sleep(SAFETY_LAG_SECONDS + 3 * FOLD_INTERVAL_SECONDS)
            released = timezone.now()
            holder.rollback()
        held.join(timeout=30)
        time.sleep(2 * FOLD_INTERVAL_SECONDS)
    missing = {event["event_id"] for event in batch} - driver.record.acked
    assert not missing, f"the held batch not acked: {held.is_alive()=} {driver.record.statuses}"
    received = Event.objects.filter(event_id=batch[1]["event_id"]).values_list(
        "received_at", flat=True
    )
    late = dt.timedelta(seconds=SAFETY_LAG_SECONDS)
    assert received and received[0] < released - late, "the batch was not held past the lag"
    recovered(stack, driver)
