"""Where dashboard numbers come from: rollup tables plus the raw tail after the watermark.

Rollups hold exactly the events up to the watermark (received_at, id); the tail is every event
after it. Additive numbers are rollup + tail (`metrics`). Distinct users are unions of user-key
bitmaps plus the tail's users whose key is not in the union (`users`). Sessions and first-seen
dates in the tail are merged with their rolled-up state, subtracting the old contribution and
adding the merged one, exactly as the rollup task will when it folds them in (`sessions`).
Everything of one read runs in one snapshot (`tail.read_snapshot`).
"""

from reports.readers.metrics import (
    ProductRow,
    category_revenue,
    dimension_events,
    event_buckets,
    product_rows,
)
from reports.readers.sessions import session_steps
from reports.readers.tail import read_snapshot
from reports.readers.tail_summary import tail_summary_share
from reports.readers.users import new_vs_returning, users

__all__ = [
    "ProductRow",
    "category_revenue",
    "dimension_events",
    "event_buckets",
    "new_vs_returning",
    "product_rows",
    "read_snapshot",
    "session_steps",
    "tail_summary_share",
    "users",
]
