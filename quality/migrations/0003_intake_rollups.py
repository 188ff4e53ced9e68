"""Receipt rollups renamed for what they count: events by time received ("intake").

Tables are renamed (rows kept), the unique constraints get the new names, and the watermark
row's name follows so that folds continue from where they were."""

from django.db import migrations, models


def watermark_rename(apps, schema_editor, old="receipts", new="intake"):
    watermarks = apps.get_model("quality", "IntakeWatermark")
    watermarks.objects.filter(name=old).update(name=new)


def watermark_rename_back(apps, schema_editor):
    watermark_rename(apps, schema_editor, old="intake", new="receipts")


class Migration(migrations.Migration):

    dependencies = [
        ("quality", "0002_receipt_rollups"),
    ]

    operations = [
        migrations.RenameModel(old_name="ReceiptWatermark", new_name="IntakeWatermark"),
        migrations.RenameModel(old_name="ReceiptHour", new_name="IntakeHour"),
        migrations.RenameModel(old_name="ReceiptRuleHour", new_name="IntakeRuleHour"),
        migrations.RemoveConstraint(model_name="intakehour", name="receipthour_key"),
        migrations.AddConstraint(
            model_name="intakehour",
            constraint=models.UniqueConstraint(
                fields=("bucket", "event_type"), name="intakehour_key"
            ),
        ),
        migrations.RemoveConstraint(model_name="intakerulehour", name="receiptrule_key"),
        migrations.AddConstraint(
            model_name="intakerulehour",
            constraint=models.UniqueConstraint(fields=("bucket", "rule"), name="intakerule_key"),
        ),
        migrations.RunPython(watermark_rename, watermark_rename_back),
    ]
