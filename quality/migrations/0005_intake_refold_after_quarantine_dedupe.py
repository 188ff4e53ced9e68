"""The events migration that folds resent bad events into one quarantine row (ADR 0009) may
remove rows the intake rollups already counted. Empty the rollups and reset their watermark:
readers then answer from raw rows (still exact) and the next folds rebuild the rollups, as
`rebuild_intake_rollups` does."""

from django.db import migrations


def intake_reset(apps, schema_editor):
    for name in ("IntakeHour", "IntakeRuleHour", "EventMinute"):
        apps.get_model("quality", name).objects.all().delete()
    apps.get_model("quality", "IntakeWatermark").objects.update(
        event_received_at=None,
        event_pk=0,
        rejected_received_at=None,
        rejected_pk=0,
        events_folded=0,
        rejected_folded=0,
    )


class Migration(migrations.Migration):

    dependencies = [
        ("quality", "0004_rule_check_replay_history"),
        ("events", "0006_rejectedevent_dedupe_key"),
    ]

    operations = [migrations.RunPython(intake_reset, migrations.RunPython.noop)]
