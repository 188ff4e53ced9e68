"""Metric rollups for the dashboards (see the analytics issue)."""
