"""Segment's HTTP tracking API (RudderStack's SDKs speak it too): `messages` (one message's
checks and dispatch), `mapping` (events) and `identity` (identify, alias), all pure; `api`
(the views) and `openapi` (their documented shapes)."""
