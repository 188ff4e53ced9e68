"""Writes of the quality app, one module per concern: `rules` (version bumps, counters, trying
a rule), `incidents`, `alerts`, `outbox` (alert delivery, ADR 0008), `checks`, `replay`, `defaults`,
`intake` (the intake rollups: events by time received).

Import the submodule you need. Services never import `quality.tasks` (tasks import services);
a service that starts a task enqueues it by name, after commit.
"""
