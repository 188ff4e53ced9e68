"""Rollup tables for the dashboards, maintained incrementally by `reports.services.rollups`.

Every table holds exactly the events up to the fold position (txid, id) in `RollupWatermark`;
readers add the raw events after it. Buckets are UTC hour, day or week (Monday) starts of the
event time, so a late event (old timestamp, new received_at) lands in the bucket it belongs to.
"""

from reports.models.base import RollupWatermark
from reports.models.metrics import (
    EventMetricDaily,
    EventMetricHourly,
    EventTotalDaily,
    EventTotalHourly,
    ProductCountryWeekly,
    ProductDeviceWeekly,
    ProductMetricDaily,
    ProductMetricHourly,
    ProductTotalDaily,
    ProductTotalHourly,
    ProductTotalWeekly,
)
from reports.models.sessions import (
    SessionMetricDaily,
    SessionMetricHourly,
    SessionRollup,
    SessionTotalDaily,
    SessionTotalHourly,
)
from reports.models.users import (
    FirstSeenBitmapDaily,
    FirstSeenBitmapHourly,
    UserBitmapDaily,
    UserBitmapHourly,
    UserBitmapWeekly,
    UserFirstSeen,
)

__all__ = [
    "EventMetricDaily",
    "EventMetricHourly",
    "EventTotalDaily",
    "EventTotalHourly",
    "FirstSeenBitmapDaily",
    "FirstSeenBitmapHourly",
    "ProductCountryWeekly",
    "ProductDeviceWeekly",
    "ProductMetricDaily",
    "ProductMetricHourly",
    "ProductTotalDaily",
    "ProductTotalHourly",
    "ProductTotalWeekly",
    "RollupWatermark",
    "SessionMetricDaily",
    "SessionMetricHourly",
    "SessionRollup",
    "SessionTotalDaily",
    "SessionTotalHourly",
    "UserBitmapDaily",
    "UserBitmapHourly",
    "UserBitmapWeekly",
    "UserFirstSeen",
]
