"""A guard around kombu's Redis bookkeeping of unacknowledged messages (issue 14).

kombu 5.7.0 (the newest release) closes a broker connection's channels after it has dropped the
connection's client. When Redis goes away under an acks_late task, two calls then reach for
that missing client and raise AttributeError, which the worker treats as unrecoverable (it
exits, and folds, checks and alerts stop until someone restarts it):
- closing the channel restores its unacknowledged messages ("'NoneType' object has no attribute
  'hostname'", after "Restoring 1 unacknowledged message(s)");
- the task, finishing after the reconnect, acks on that dead channel ("... no attribute
  'client'").
The guard skips both when the channel's connection is gone and only forgets the delivery in
memory. Nothing is lost: the message stays in Redis's unacked index (if Redis kept its data)
and the visibility-timeout sweep (`CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]`) puts
it back on its queue, so it may run once more; every acks_late task here is idempotent.
Off switch: CELERY_REDIS_RESTORE_GUARD=false (tests/faults show the crash without it).
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

logger = logging.getLogger(__name__)

_original = {
    "restore_unacked": kombu_redis.QoS.restore_unacked,
    "ack": kombu_redis.QoS.ack,
    "reject": kombu_redis.QoS.reject,
}


def _connection_gone(qos: Any) -> bool:
    connection = getattr(qos.channel, "connection", None)
    return connection is None or getattr(connection, "client", None) is None


def _restore_unacked(self: Any, client: Any = None) -> Any:
    if client is None and _connection_gone(self):
        logger.warning(
            "broker connection already closed: %d unacknowledged message(s) left in Redis for "
            "the visibility-timeout restore",
            len(self._delivered),
        )
        self._delivered.clear()
        return None
    return _original["restore_unacked"](self, client)


def _ack(self: Any, delivery_tag: Any) -> None:
    if _connection_gone(self):
        logger.warning("ack on a closed broker connection skipped: the message may run again")
        virtual.QoS.ack(self, delivery_tag)
        return
    _original["ack"](self, delivery_tag)


def _reject(self: Any, delivery_tag: Any, requeue: bool = False) -> None:
    if _connection_gone(self):
        logger.warning("reject on a closed broker connection skipped: the message may run again")
        virtual.QoS.ack(self, delivery_tag)
        return
    _original["reject"](self, delivery_tag, requeue=requeue)


def restore_guard_install() -> None:
    """Idempotent: installs the guard in this process."""
    kombu_redis.QoS.restore_unacked = _restore_unacked
    kombu_redis.QoS.ack = _ack
    kombu_redis.QoS.reject = _reject
