"""`rebuild_rollups` running while the worker folds and warms the dashboard cache cannot
deadlock: the rebuild, the folds and the dashboard snapshots share advisory locks
(reports.services.rollup_locks). Several rounds of both at once, on real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connections
from django.utils import timezone

from reports.selectors.pages import dashboard_cache_warm
from reports.services.rollups import rollups_advance, rollups_rebuild
from tests.factories import EventFactory
from tests.rollup_scaffold import assert_event_totals_exact

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("require_postgres")]

ROUNDS = 8  # without reports.locks this deadlocked (AccessExclusive vs AccessShare) within 12


def _in_thread(work, errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_rebuild_and_fold_with_cache_warm_run_together_without_deadlock(transactional_db):
    now = timezone.now()
    for index in range(60):
        EventFactory(
            timestamp=now - dt.timedelta(days=index % 20),
            received_at=now - dt.timedelta(minutes=5, seconds=index),
        )
    later = now + dt.timedelta(hours=1)
    rollups_advance(now=later)
    errors: list[BaseException] = []

    def folds() -> None:
        for _ in range(3):
            rollups_advance(now=later)
            dashboard_cache_warm(now=later)

    for _ in range(ROUNDS):
        threads = [
            _in_thread(lambda: rollups_rebuild(now=later), errors),
            _in_thread(folds, errors),
            _in_thread(lambda: dashboard_cache_warm(now=later), errors),
        ]
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
    assert_event_totals_exact()
