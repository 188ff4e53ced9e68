"""Faults of the broker, the worker, beat and the alert webhook while events flow: Redis killed
with a fold in flight, the worker SIGKILLed mid-fold, two beats, a webhook that hangs. Each ends
with the invariants of the suite (stack_fixture.recovered)."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator

import psycopg
import pytest
from celery import Celery
from django.db import connection
from django.utils import timezone

from reports.models import RollupWatermark
from tests.factories import EventFactory, QualityCheckFactory
from tests.faults.driver import Driver
from tests.faults.stack import FOLD_INTERVAL_SECONDS
from tests.faults.stack_fixture import recovered, stack  # noqa: F401 (the fixture)
from tests.webhook_receiver import webhook_receiver

pytestmark = [pytest.mark.faults, pytest.mark.postgres]


def wait_until(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _lock_waiters(database: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            [database],
        )
        return cursor.fetchone()[0]


@contextlib.contextmanager
def fold_in_flight() -> Iterator[None]:
    """Hold the watermark row locked until a fold task is blocked on it, so the worker has a
    task received and not acknowledged (acks_late) while the fault strikes; release on exit."""
    assert wait_until(RollupWatermark.objects.exists), "no fold ran yet"
    settings = connection.settings_dict
    database = settings["NAME"]
    with psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user="postgres",
        dbname=database,
    ) as holder:
        holder.execute(f"SELECT 1 FROM {RollupWatermark._meta.db_table} FOR UPDATE")  # noqa: S608
        assert wait_until(lambda: _lock_waiters(database) > 0), "no fold blocked on the lock"
        yield
        holder.rollback()


def test_redis_killed_with_a_task_in_flight(stack):  # noqa: F811
    """Redis dies while the worker holds an unacknowledged fold, and comes back: the worker
    process survives (kombu's restore of unacked messages must not kill it) and folds go on."""
    with Driver(stack.web_port) as driver:
        time.sleep(3)
        with fold_in_flight():
            stack.redis_kill()
            time.sleep(2)
        time.sleep(3)
        stack.redis_start()
        time.sleep(5)
    recovered(stack, driver)


def test_worker_sigkilled_mid_fold(stack):  # noqa: F811
    """The worker is SIGKILLed while a fold runs; its supervisor starts a new one (the restart
    policy, not an operator): the half-done fold left nothing behind and the numbers are exact."""
    with Driver(stack.web_port) as driver:
        time.sleep(3)
        with fold_in_flight():
            stack.worker_kill()
        stack.worker_start()
        time.sleep(5)
    recovered(stack, driver)


def _sends(stack, task: str) -> int:  # noqa: F811
    return sum(
        stack.log(f"beat{n}").count(f"Sending due task {task}") for n in range(len(stack.beats))
    )


def test_two_beats_schedule_each_task_once(stack):  # noqa: F811
    """A second beat (a deploy overlap, a duplicated container) does not double the schedule."""
    stack.beat_start()
    with Driver(stack.web_port) as driver:
        time.sleep(5)  # both beats started and settled on who leads
        before = _sends(stack, "reports-rollups-advance")
        window = 20
        time.sleep(window)
        sent = _sends(stack, "reports-rollups-advance") - before
    assert sent <= window / FOLD_INTERVAL_SECONDS + 2, f"{sent} folds scheduled in {window} s"
    recovered(stack, driver)


def test_webhook_hanging_alert_delivered_later(stack):  # noqa: F811
    """The alert webhook accepts and never answers for a while: ingestion and folds go on, and
    the incident's alert arrives once the receiver answers again, exactly once."""
    with webhook_receiver() as receiver:
        QualityCheckFactory(
            name="fresh",
            kind="freshness",
            threshold=15,
            interval_minutes=1,
            webhook_url=receiver.url,
        )
        old = EventFactory(timestamp=timezone.now() - dt.timedelta(hours=1))
        receiver.hanging.set()
        broker = Celery(broker=stack.redis_url)
        broker.send_task("quality.run_scheduled", queue="faults")
        # No traffic yet: fresh events would make the freshness check pass.
        assert wait_until(lambda: receiver.attempts > 0, timeout=60), "no alert attempted"
        with Driver(stack.web_port) as driver:
            time.sleep(20)
            receiver.hanging.clear()
            delivered = receiver.wait_for(1, timeout=120)
        assert [body["event"] for body in delivered] == ["opened"]
        driver.record.sent.add(str(old.event_id))  # stored by the test, not the driver
        recovered(stack, driver)
