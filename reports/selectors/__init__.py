"""Reads: the dashboard page selectors (`pages`) and the rollup and raw-tail readers they use."""
