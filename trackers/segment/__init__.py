"""Segment's HTTP tracking API (RudderStack's SDKs speak it too): `mapping` (pure) and `api`."""
