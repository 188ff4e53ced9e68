"""One quarantine row per bad event (ADR 0009): add the dedupe key, the attempt count and the
last time seen; fill them for existing rows and fold the duplicates a retried batch left into
their first row; then make the key unique.

Folding duplicates changes quarantine counts behind the intake rollups' watermark: the quality
migration that depends on this one empties those rollups, and the next folds rebuild them.
"""

import hashlib
import uuid

from django.db import migrations, models


def _key(row) -> str:
    try:
        payload_id = row.event_id if len(row.event_id) <= 64 else ""
        return f"id:{uuid.UUID(payload_id)}" if payload_id else _hash(row)
    except ValueError:
        return _hash(row)


def _hash(row) -> str:
    sender = f"key:{row.source_key_id}" if row.source_key_id is not None else f"ip:{row.source_ip or ''}"
    return "sha256:" + hashlib.sha256(sender.encode() + b"\n" + row.raw_payload.encode()).hexdigest()


def dedupe_forward(apps, schema_editor):
    """Keep the first row (receive order) of each key; it takes the others' attempts, their
    latest time seen, and `replayed` if any of them was replayed."""
    RejectedEvent = apps.get_model("events", "RejectedEvent")
    first: dict[str, object] = {}
    extra: dict[str, list] = {}
    rows = RejectedEvent.objects.order_by("received_at", "id").only(
        "id", "event_id", "raw_payload", "source_key_id", "source_ip", "received_at", "status",
        "replay_count", "replayed_at",
    )
    for row in rows.iterator(chunk_size=2000):
        key = _key(row)
        if key in first:
            extra.setdefault(key, []).append(row)
            continue
        first[key] = row
        RejectedEvent.objects.filter(pk=row.pk).update(
            dedupe_key=key, attempts=1, last_seen_at=row.received_at
        )
    for key, duplicates in extra.items():
        kept = first[key]
        replayed = [row for row in (kept, *duplicates) if row.status == "replayed"]
        RejectedEvent.objects.filter(pk=kept.pk).update(
            attempts=1 + len(duplicates),
            last_seen_at=max(row.received_at for row in duplicates),
            status="replayed" if replayed else kept.status,
            replay_count=max(row.replay_count for row in (kept, *duplicates)),
            replayed_at=max((row.replayed_at for row in replayed if row.replayed_at), default=None),
        )
        RejectedEvent.objects.filter(pk__in=[row.pk for row in duplicates]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0005_key_scopes_history_roles"),
    ]

    operations = [
        migrations.AddField(
            model_name="rejectedevent",
            name="attempts",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AddField(
            model_name="rejectedevent",
            name="last_seen_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="rejectedevent",
            name="dedupe_key",
            field=models.CharField(editable=False, max_length=80, null=True),
        ),
        migrations.RunPython(dedupe_forward, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="rejectedevent",
            name="dedupe_key",
            field=models.CharField(editable=False, max_length=80, unique=True),
        ),
    ]
