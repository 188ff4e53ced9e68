"""Rollup tables for the dashboards, maintained incrementally by `reports.rollups`.

Every table holds exactly the events up to the watermark (received_at, id) in `RollupWatermark`;
readers add the raw events after it. Buckets are UTC hour, day or week (Monday) starts of the
event time, so a late event (old timestamp, new received_at) lands in the bucket it belongs to.
"""

import uuid

from django.db import models


class RollupWatermark(models.Model):
    """How far (in receive order) raw events are folded into the rollups. One row per name."""

    name = models.CharField(max_length=32, unique=True)
    received_at = models.DateTimeField(null=True, blank=True)
    event_pk = models.BigIntegerField(default=0)
    events_rolled_up = models.BigIntegerField(default=0)
    generation = models.UUIDField(
        default=uuid.uuid4,
        help_text="New on every rebuild: rollup contents are a function of (generation, watermark)"
        " in this database, so it keys caches of rollup reads.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.received_at} / {self.event_pk}"


class RollupRow(models.Model):
    """A row of a rollup table: its bucket (UTC) names it."""

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.bucket:%Y-%m-%d %H:00}"


class EventMetricBase(RollupRow):
    """Events, warned events and purchase revenue per bucket, type, device and country."""

    bucket = models.DateTimeField()
    event_type = models.CharField(max_length=32)
    device_type = models.CharField(max_length=16)
    country = models.CharField(max_length=2)
    events = models.BigIntegerField(default=0)
    warned = models.BigIntegerField(default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        abstract = True


class EventMetricHourly(EventMetricBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "event_type", "device_type", "country"],
                name="rollup_event_hour_key",
            )
        ]


class EventMetricDaily(EventMetricBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "event_type", "device_type", "country"],
                name="rollup_event_day_key",
            )
        ]


class EventTotalBase(RollupRow):
    """Event metrics without device and country: what views with neither filter read. A
    90-day read of the per-device-and-country table sums ~70 times more rows (31,000 at 10M
    events, against ~450 here). Kept by the same folds, so it always equals the event metrics
    summed over device and country."""

    bucket = models.DateTimeField()
    event_type = models.CharField(max_length=32)
    events = models.BigIntegerField(default=0)
    warned = models.BigIntegerField(default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        abstract = True


class EventTotalHourly(EventTotalBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "event_type"], name="rollup_event_total_hour_key"
            )
        ]


class EventTotalDaily(EventTotalBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "event_type"], name="rollup_event_total_day_key"
            )
        ]


class ProductMetricBase(RollupRow):
    """product_view / add_to_cart / purchase events and revenue per product (and category)."""

    bucket = models.DateTimeField()
    product_id = models.CharField(max_length=128)
    category = models.CharField(max_length=128)
    event_type = models.CharField(max_length=32)
    device_type = models.CharField(max_length=16)
    country = models.CharField(max_length=2)
    events = models.BigIntegerField(default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        abstract = True


class ProductMetricHourly(ProductMetricBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "product_id", "category", "event_type", "device_type", "country"],
                name="rollup_product_hour_key",
            )
        ]
        # Filtered product views read only their device's or country's rows (the key's range
        # on bucket alone walks every row of the period).
        indexes = [
            models.Index(fields=["device_type", "bucket"], name="rollup_product_hour_device"),
            models.Index(fields=["country", "bucket"], name="rollup_product_hour_country"),
        ]


class ProductMetricDaily(ProductMetricBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "product_id", "category", "event_type", "device_type", "country"],
                name="rollup_product_day_key",
            )
        ]
        indexes = [
            models.Index(fields=["device_type", "bucket"], name="rollup_product_day_device"),
            models.Index(fields=["country", "bucket"], name="rollup_product_day_country"),
        ]


class ProductDimensionWeekBase(models.Model):
    """Product metrics per UTC week (Monday) and one dimension (device or country): a view
    filtered by that dimension alone over a day-bucketed period reads its whole weeks here and
    only the days at either end from the daily product metrics. At 10M events, 90 days of
    mobile were ~177,000 daily rows (over 100 ms to sum); a week of one device holds ~1,300."""

    bucket = models.DateTimeField()
    product_id = models.CharField(max_length=128)
    category = models.CharField(max_length=128)
    event_type = models.CharField(max_length=32)
    events = models.BigIntegerField(default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.bucket:%Y-%m-%d}"


class ProductDeviceWeekly(ProductDimensionWeekBase):
    device_type = models.CharField(max_length=16)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                # the dimension first: the key's index serves "this device, these weeks"
                fields=["device_type", "bucket", "product_id", "category", "event_type"],
                name="rollup_product_device_week_key",
            )
        ]


class ProductCountryWeekly(ProductDimensionWeekBase):
    country = models.CharField(max_length=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["country", "bucket", "product_id", "category", "event_type"],
                name="rollup_product_country_week_key",
            )
        ]


class ProductTotalBase(RollupRow):
    """Product metrics without device and country: what views with neither filter read. A
    30-day read of the per-device-and-country table sums tens of times more rows."""

    bucket = models.DateTimeField()
    product_id = models.CharField(max_length=128)
    category = models.CharField(max_length=128)
    event_type = models.CharField(max_length=32)
    events = models.BigIntegerField(default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        abstract = True


class ProductTotalHourly(ProductTotalBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "product_id", "category", "event_type"],
                name="rollup_product_total_hour_key",
            )
        ]


class ProductTotalDaily(ProductTotalBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "product_id", "category", "event_type"],
                name="rollup_product_total_day_key",
            )
        ]


class ProductTotalWeekly(ProductTotalBase):
    """Product totals per UTC week (Monday): a day-bucketed period reads its whole weeks here
    and only the days at either end from the daily totals (90 days: 25 buckets, not 90)."""

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "product_id", "category", "event_type"],
                name="rollup_product_total_week_key",
            )
        ]


class UserBitmapBase(RollupRow):
    """Users active in a bucket on a device in a country, as a serialized roaring bitmap of
    their keys (`UserFirstSeen.id`): distinct users over any set of buckets are exact (the size
    of the union) and cost one small row per bucket x device x country, not one per user."""

    bucket = models.DateTimeField()
    device_type = models.CharField(max_length=16)
    country = models.CharField(max_length=2)
    users = models.BinaryField()

    class Meta:
        abstract = True


class UserBitmapHourly(UserBitmapBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "device_type", "country"], name="rollup_user_bitmap_hour_key"
            )
        ]


class UserBitmapDaily(UserBitmapBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "device_type", "country"], name="rollup_user_bitmap_day_key"
            )
        ]


class UserBitmapWeekly(UserBitmapBase):
    """Users active per UTC week (bucket: Monday 00:00) x device x country: the union of the
    week's daily rows. A day-bucketed period reads its whole weeks here and only the days at
    either end from the daily rows (90 days: ~25 buckets x device x country, not 90)."""

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "device_type", "country"], name="rollup_user_bitmap_week_key"
            )
        ]


class FirstSeenBitmapBase(RollupRow):
    """Keys of the users whose first event ever is in the bucket (any device or country): new
    users of a period are its active users intersected with these. A late event that moves a
    user's first event earlier moves its key to the earlier bucket."""

    bucket = models.DateTimeField(unique=True)
    users = models.BinaryField()

    class Meta:
        abstract = True


class FirstSeenBitmapHourly(FirstSeenBitmapBase):
    pass


class FirstSeenBitmapDaily(FirstSeenBitmapBase):
    pass


class UserFirstSeen(models.Model):
    """The event time of each user's first event, and the user's dense key (`id`, assigned when
    the rollup first sees the user and never changed, except by a full rebuild) in the user
    bitmaps."""

    user_id = models.CharField(max_length=128, unique=True)
    first_seen = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.user_id} first seen {self.first_seen}"


class SessionRollup(models.Model):
    """One row per session, merged from its events in any order.

    The first event is the smallest (timestamp, id); user, device and country are its values.
    `reached_step` is the furthest funnel step (1 page_view .. 5 purchase, 0 none).
    """

    session_id = models.CharField(max_length=128, unique=True)
    user_id = models.CharField(max_length=128)
    started_at = models.DateTimeField()
    first_event_pk = models.BigIntegerField()
    ended_at = models.DateTimeField()
    events = models.IntegerField(default=0)
    pages = models.IntegerField(default=0)
    reached_step = models.SmallIntegerField(default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    device_type = models.CharField(max_length=16)
    country = models.CharField(max_length=2)

    class Meta:
        indexes = [models.Index(fields=["started_at"], name="rollup_session_start_idx")]

    def __str__(self) -> str:
        return f"session {self.session_id}"

    @property
    def converted(self) -> bool:
        return self.reached_step == 5


class SessionMetricBase(RollupRow):
    """Sessions (by start bucket, first device and country, furthest step) and their revenue."""

    bucket = models.DateTimeField()
    device_type = models.CharField(max_length=16)
    country = models.CharField(max_length=2)
    reached_step = models.SmallIntegerField()
    sessions = models.BigIntegerField(default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        abstract = True


class SessionMetricHourly(SessionMetricBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "device_type", "country", "reached_step"],
                name="rollup_session_hour_key",
            )
        ]


class SessionMetricDaily(SessionMetricBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "device_type", "country", "reached_step"],
                name="rollup_session_day_key",
            )
        ]


class SessionTotalBase(RollupRow):
    """Session metrics without device and country: what unsplit views with neither filter read.
    A 90-day read of the per-device-and-country table groups ~60 times more rows (32,000 at
    10M events, against ~540 here). Kept by the same session deltas, so it always equals the
    session metrics summed over device and country."""

    bucket = models.DateTimeField()
    reached_step = models.SmallIntegerField()
    sessions = models.BigIntegerField(default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        abstract = True


class SessionTotalHourly(SessionTotalBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "reached_step"], name="rollup_session_total_hour_key"
            )
        ]


class SessionTotalDaily(SessionTotalBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "reached_step"], name="rollup_session_total_day_key"
            )
        ]
