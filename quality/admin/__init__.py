"""Admin: where analysts own data quality. One module per area: `rules` (with "try this rule"
and the rule counters), `checks` (with "run now", and their runs), `incidents` (acknowledge /
resolve), `outbox` (alert deliveries and dead letters, resend), `replay` (replay jobs) and
`quarantine` (the events app's RejectedEvent admin, extended with failed-rule filters and
replay). Thin: every write goes through quality.services.

Django's admin autodiscovery imports this package; importing the modules registers them.
"""

from quality.admin import checks, incidents, outbox, quarantine, replay, rules

__all__ = ["checks", "incidents", "outbox", "quarantine", "replay", "rules"]
