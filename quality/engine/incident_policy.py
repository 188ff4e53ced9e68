"""When an incident speaks: re-alert on a materially worse metric or a change of direction,
resolve only after several passes in a row, and reopen quietly after a flap (ADR 0020).

Pure decisions on plain numbers; `quality.services.incidents` applies them to rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# Consecutive passing runs before an incident auto-resolves: a metric hovering at its threshold
# stays one open incident instead of resolving and reopening every other run.
RESOLVE_AFTER_PASSES = 3
# A re-alert needs the distance past the threshold to have at least doubled since the last
# alert, and grown by at least this share of the threshold (of 1 - target for a pass rate),
# so a metric of 0.0101 vs 0.01 moving to 0.0103 is not "twice as bad".
WORSE_FACTOR = 2.0
WORSE_MIN_STEP = 0.25
# An incident failing again this soon after it auto-resolved is reopened (same row, same
# history); each reopen doubles the passes it needs to resolve again, so a flapping metric
# sends fewer and fewer resolve/reopen pairs instead of a storm.
REOPEN_WITHIN = dt.timedelta(hours=1)

WORSENED, DIRECTION_CHANGED = "worsened", "reversed"  # AlertOutbox.event: 16 chars


@dataclass(frozen=True, slots=True)
class Reading:
    """A failing run's metric as the incident sees it: `value` on the check's own scale, and
    `sign` (+1 / -1 / 0) for metrics that can fail on either side (a volume spike or drop)."""

    value: float | None
    sign: int = 0


def excess(value: float, threshold: float, *, lower_is_worse: bool) -> float:
    """How far past the threshold a metric is (>= 0 when failing)."""
    return threshold - value if lower_is_worse else value - threshold


def realert_reason(
    alerted: Reading,
    current: Reading,
    *,
    threshold: float | None,
    lower_is_worse: bool = False,
) -> str | None:
    """Why an open incident should alert again, or None: its metric changed direction (a
    spike that became a drop) or got materially worse than at the last alert."""
    if current.value is None or alerted.value is None or threshold is None:
        return None
    if alerted.sign and current.sign and alerted.sign != current.sign:
        return DIRECTION_CHANGED
    before = excess(alerted.value, threshold, lower_is_worse=lower_is_worse)
    now = excess(current.value, threshold, lower_is_worse=lower_is_worse)
    # The room the metric has on its failing side: a pass rate's target 0.97 leaves 0.03.
    room = 1 - threshold if lower_is_worse and 0 < threshold < 1 else abs(threshold)
    step = WORSE_MIN_STEP * max(room, 1e-9)
    if now >= WORSE_FACTOR * max(before, 0.0) and now - before >= step:
        return WORSENED
    return None


def should_resolve(consecutive_passes: int, *, needed: int = RESOLVE_AFTER_PASSES) -> bool:
    return consecutive_passes >= needed


def passes_needed(base: int, reopens: int) -> int:
    """Passes in a row before auto-resolve: `base`, doubled for each time the incident was
    reopened (capped at 16x), so every resolve/reopen pair is rarer than the one before."""
    return base * 2 ** min(max(reopens, 0), 4)


def change_summary(
    *,
    event: str,
    before: float | None,
    after: float | None,
    threshold: float | None,
    since: dt.datetime,
) -> str:
    """One line for an alert: what changed, by how much, since when."""
    when = f"since {since:%Y-%m-%d %H:%M} UTC"
    if after is None:
        return f"{event}: no metric (no data), failing {when}"
    limit = f" (threshold {threshold:g})" if threshold is not None else ""
    if before is None or event == "opened":
        return f"{event}: metric {after:.4g}{limit}, failing {when}"
    delta = after - before
    ratio = f", x{after / before:.3g}" if before not in (0, 0.0) else ""
    return (
        f"{event}: metric {before:.4g} -> {after:.4g} ({delta:+.4g}{ratio}){limit}, failing {when}"
    )
