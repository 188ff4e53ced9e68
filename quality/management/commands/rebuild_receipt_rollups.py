"""`rebuild_receipt_rollups`: the name `rebuild_intake_rollups` had before issue 10 (the README
and runbooks used it); the same command."""

from quality.management.commands.rebuild_intake_rollups import Command as RebuildIntakeRollups


class Command(RebuildIntakeRollups):
    pass
