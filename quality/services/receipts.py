"""Old import path of the intake rollup writes, kept only for `quality.services.replay` until
the merge of issue 10 points it at `quality.services.intake`; delete this module then."""

from quality.services.intake import QuarantinedBefore
from quality.services.intake import intake_replay_adjust as receipts_replay_adjust

__all__ = ["QuarantinedBefore", "receipts_replay_adjust"]
