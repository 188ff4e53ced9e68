"""Distinct users: per-bucket bitmaps of user keys and the key and first-seen time per user."""

from django.db import models

from reports.models.base import RollupRow


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
