"""The rollup tables by grain (and filter dimension): the fold writes them, the selectors read
them, and both look them up here."""

from django.conf import settings

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

ECOMMERCE_FUNNEL_STEPS = ("page_view", "product_view", "add_to_cart", "checkout_start", "purchase")
# The funnel the sessions fold: the e-commerce steps, with any custom steps a shop put between
# them (settings.REPORTS_FUNNEL_STEPS, checked by reports.checks).
FUNNEL_STEPS: tuple[str, ...] = tuple(settings.REPORTS_FUNNEL_STEPS)
CART_STEP = FUNNEL_STEPS.index("add_to_cart") + 1 if "add_to_cart" in FUNNEL_STEPS else 3
PRODUCT_EVENT_TYPES = ("product_view", "add_to_cart", "purchase")
GRAINS = ("hour", "day")

EVENT_METRIC = {"hour": EventMetricHourly, "day": EventMetricDaily}
EVENT_TOTAL = {"hour": EventTotalHourly, "day": EventTotalDaily}
PRODUCT_METRIC = {"hour": ProductMetricHourly, "day": ProductMetricDaily}
PRODUCT_TOTAL = {"hour": ProductTotalHourly, "day": ProductTotalDaily, "week": ProductTotalWeekly}
# Weekly product metrics per filter dimension (the field a device or country filter matches).
PRODUCT_WEEK_BY = {"device_type": ProductDeviceWeekly, "country": ProductCountryWeekly}
SESSION_METRIC = {"hour": SessionMetricHourly, "day": SessionMetricDaily}
SESSION_TOTAL = {"hour": SessionTotalHourly, "day": SessionTotalDaily}
USER_BITMAP = {"hour": UserBitmapHourly, "day": UserBitmapDaily, "week": UserBitmapWeekly}
FIRST_SEEN_BITMAP = {"hour": FirstSeenBitmapHourly, "day": FirstSeenBitmapDaily}
ALL_MODELS = (
    *EVENT_METRIC.values(),
    *EVENT_TOTAL.values(),
    *PRODUCT_METRIC.values(),
    *PRODUCT_TOTAL.values(),
    *PRODUCT_WEEK_BY.values(),
    *USER_BITMAP.values(),
    *FIRST_SEEN_BITMAP.values(),
    *SESSION_METRIC.values(),
    *SESSION_TOTAL.values(),
    SessionRollup,
    UserFirstSeen,
)
