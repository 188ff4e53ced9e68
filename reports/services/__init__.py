"""Writes: the rollup folds and rebuilds, and the user bitmaps they maintain."""
