"""Data-quality rules, checks and incidents (see the quality engine issue)."""
