"""A beat scheduler that only schedules while it holds a Redis lease (single beat, issue 14).

Two `celery beat` processes (a blue-green deploy, a second host, an operator's mistake) would
each send every periodic task. This scheduler takes the lease `ops:beat-leader` (SET NX PX) on
each tick and renews it while it leads; a follower ticks without sending anything and takes
over when the leader's lease expires (BEAT_LEADER_LEASE_SECONDS after it died). Without Redis
(development, eager tasks) there is only one process, and it always leads.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid

import redis
from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)

LEADER_KEY = "ops:beat-leader"
# Renew only our own lease: compare and extend in one step.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


class LeaderDatabaseScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler, ticking only while it holds the leader lease."""

    def __init__(self, *args, **kwargs) -> None:
        self.leader_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.is_leader = False
        super().__init__(*args, **kwargs)

    def _lease_hold(self) -> bool:
        if not settings.REDIS_URL:
            return True
        lease_ms = settings.BEAT_LEADER_LEASE_SECONDS * 1000
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
        )
        try:
            if client.set(LEADER_KEY, self.leader_id, nx=True, px=lease_ms):
                return True
            return bool(client.eval(_RENEW, 1, LEADER_KEY, self.leader_id, lease_ms))
        except redis.RedisError as exc:
            logger.warning("beat leader lease unavailable: %s", type(exc).__name__)
            return False

    def tick(self, *args, **kwargs) -> float:
        leading = self._lease_hold()
        if leading != self.is_leader:
            logger.info("beat %s %s", self.leader_id, "leads" if leading else "follows")
            self.is_leader = leading
            if leading:  # re-read the last run times the previous leader saved
                self._last_full_sync = dt.datetime.min
        if not leading:
            return min(1.0, settings.BEAT_LEADER_LEASE_SECONDS / 3)
        interval = super().tick(*args, **kwargs)
        # Come back before the lease runs out, so a leader never loses it by sleeping.
        return min(interval, settings.BEAT_LEADER_LEASE_SECONDS / 3)
