"""Additive rollups of events and products, per bucket (and device and country)."""

from django.db import models

from reports.models.base import RollupRow


class EventMetricBase(RollupRow):
    """Events, warned events and purchase revenue per bucket, type, device and country."""

    bucket = models.DateTimeField()
    event_type = models.CharField(max_length=128)  # custom event names (ADR 0014)
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
    event_type = models.CharField(max_length=128)  # custom event names (ADR 0014)
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
    event_type = models.CharField(max_length=128)  # custom event names (ADR 0014)
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
    event_type = models.CharField(max_length=128)  # custom event names (ADR 0014)
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
    event_type = models.CharField(max_length=128)  # custom event names (ADR 0014)
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
