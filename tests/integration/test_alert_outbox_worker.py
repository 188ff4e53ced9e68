"""The alert outbox with a real Celery worker (ADR 0010): the delivery enqueued after commit
meets a failing webhook, and the beat's flush delivers the alert once the webhook recovers;
an alert raised while the broker (Redis) is down waits in the outbox and is delivered when the
broker returns. The broker here is a redis-server of the test's own, so it can be stopped."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from analytics_site.celery import app
from quality.models import AlertOutbox
from quality.services import checks
from tests.factories import QualityCheckFactory
from tests.own_redis import OwnRedis
from tests.webhook_receiver import webhook_receiver

pytestmark = [pytest.mark.celery_worker, pytest.mark.usefixtures("require_postgres")]


@pytest.fixture
def fast_backoff(monkeypatch, settings):
    """Backoff in tenths of a second, in this process and in the worker it starts."""
    for name, value in (
        ("ALERT_OUTBOX_BACKOFF_BASE_SECONDS", "0.1"),
        ("ALERT_OUTBOX_BACKOFF_MAX_SECONDS", "0.5"),
    ):
        monkeypatch.setenv(name, value)
        setattr(settings, name, float(value))


@pytest.fixture
def own_broker(require_redis, settings) -> Iterator[OwnRedis]:
    """A redis-server of this test's own as broker and result backend (for the worker too);
    TEST_REDIS_PORT pins its port."""
    port = os.environ.get("TEST_REDIS_PORT")
    server = OwnRedis(int(port) if port else None)
    try:
        server.start()
        settings.REDIS_URL = f"redis://127.0.0.1:{server.port}/0"
        _connections_forget()  # celery_worker points the app at REDIS_URL next
        yield server
    finally:
        server.stop()
        _connections_forget()  # celery_worker has put the shared broker back


def _connections_forget() -> None:
    """Drop the app's cached broker pool, producers and result backend, built for the
    previous broker URL."""
    app._pool = None
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)
    app.amqp._producer_pool = None


def _beat_until(app, predicate, seconds: float = 30.0) -> None:
    """What beat does every ALERT_OUTBOX_INTERVAL_SECONDS: send the flush task (here more
    often), through the broker, to the worker."""
    queue = app.conf.task_default_queue
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        try:
            app.send_task("quality.alert_outbox_flush", queue=queue).get(timeout=10)
        except Exception:  # the broker is still coming back
            time.sleep(0.2)
        time.sleep(0.2)


def _delivered() -> bool:
    return AlertOutbox.objects.filter(status="delivered").exists()


def test_the_worker_delivers_once_the_failing_webhook_recovers(fast_backoff, celery_worker):
    with webhook_receiver(statuses=[503, 500, 503]) as receiver:
        check = QualityCheckFactory(kind="freshness", threshold=15, webhook_url=receiver.url)
        checks.check_run(check.pk)  # commits (transactional test): enqueued after commit
        deadline = time.monotonic() + 20
        while receiver.attempts == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.attempts >= 1  # the worker's delivery after commit met the failure
        _beat_until(celery_worker, _delivered)
        assert len(receiver.wait_for(1)) == 1
    alert = AlertOutbox.objects.get()
    assert (alert.status, alert.attempts) == ("delivered", 4)
    assert receiver.received[0]["delivery_id"] == alert.delivery_id


def test_an_alert_raised_while_the_broker_is_down_is_delivered_when_it_returns(
    own_broker, celery_worker
):
    with webhook_receiver() as receiver:
        check = QualityCheckFactory(kind="freshness", threshold=15, webhook_url=receiver.url)
        own_broker.stop()
        checks.check_run(check.pk)  # the enqueue after commit fails: logged, not raised
        alert = AlertOutbox.objects.get()
        assert alert.status == "pending" and alert.attempts == 0
        time.sleep(1)
        assert receiver.attempts == 0
        own_broker.start()
        _beat_until(celery_worker, _delivered, seconds=60)
        assert len(receiver.wait_for(1)) == 1
    alert.refresh_from_db()
    assert (alert.status, alert.attempts) == ("delivered", 1)
