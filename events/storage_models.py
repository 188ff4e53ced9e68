"""The events table's storage companions (PostgreSQL mechanics behind `Event`): the dedupe keys
across its time partitions (ADR 0021, 0027) and the originals stored once per insert (ADR 0041).
Imported by events.models, where Django and the rest of the code find them."""

from django.db import models


class OriginalBatch(models.Model):
    """One insert's original messages, stored once (ADR 0041): their compact JSON, one per line
    (an empty line for an event without one, or whose person was erased). Its events share
    its received_at, which retention deletes it by once none of them is left."""

    received_at = models.DateTimeField(db_index=True)
    messages = models.TextField()  # COMPRESSION lz4 on PostgreSQL (migration 0016)

    def __str__(self) -> str:
        return f"originals {self.pk} at {self.received_at}"


class EventKey(models.Model):
    """The event_id of every event stored on PostgreSQL: the dedupe key across the events
    table's time partitions, which cannot hold a unique index on event_id alone (ADR 0021).

    Claimed by a trigger on each insert into events_event (every path: API, replay, COPY), and
    kept when the event goes (retention, erasure): a late resend stays a duplicate. Unused on
    SQLite, where the events table keeps its unique index.
    """

    event_id = models.UUIDField(primary_key=True)
    received_at = models.DateTimeField()

    def __str__(self) -> str:
        return str(self.event_id)
