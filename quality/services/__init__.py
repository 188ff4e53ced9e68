"""Writes of the quality app, one module per concern: `rules` (version bumps, counters, trying
a rule), `incidents`, `alerts`, `outbox` (alert delivery, ADR 0010), `checks`, `replay`,
`defaults`, `intake` (the intake rollups: events by time received), `intake_forget` (their
correction for an erasure), `retention` (old check runs, intake minutes, resolved incidents).

Import the submodule you need. Services never import `quality.tasks` (tasks import services);
a service that starts a task enqueues it by name, after commit.
"""
