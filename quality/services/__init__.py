"""Writes of the quality app, one module per concern: `rules` (version bumps, counters, trying
a rule), `incidents`, `alerts`, `checks`, `replay`, `defaults`.

Import the submodule you need; this package deliberately imports nothing, because
`events.services` imports `quality.services.rules` on the ingestion path and
`quality.services.replay` imports `events.services`.
"""
