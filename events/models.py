"""Stored shop events, the events we refused (kept with reasons), and ingestion keys."""

import hashlib
import json

import simple_history
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from events.receive_order import CurrentTransactionId


class EventType(models.TextChoices):
    PAGE_VIEW = "page_view"
    PRODUCT_VIEW = "product_view"
    SEARCH = "search"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    CHECKOUT_START = "checkout_start"
    PURCHASE = "purchase"


class DeviceType(models.TextChoices):
    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"
    OTHER = "other"


class Event(models.Model):
    """One accepted event. `event_id` is the client's idempotency key: stored at most once."""

    event_id = models.UUIDField(unique=True)
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    timestamp = models.DateTimeField(help_text="Event time in UTC, corrected for clock skew.")
    client_timestamp = models.DateTimeField(
        null=True, blank=True, help_text="Timestamp as sent by the client, before skew correction."
    )
    received_at = models.DateTimeField(help_text="Server time when the event was accepted.")
    user_id = models.CharField(max_length=128)
    session_id = models.CharField(max_length=128)
    device_type = models.CharField(max_length=16, choices=DeviceType.choices)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    page_url = models.CharField(max_length=2048, blank=True, default="")
    referrer = models.CharField(max_length=2048, blank=True, default="")
    product_id = models.CharField(max_length=128, blank=True, default="")
    category = models.CharField(max_length=128, blank=True, default="")
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    quantity = models.IntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="", help_text="ISO 4217")
    order_id = models.CharField(max_length=128, blank=True, default="")
    revenue = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    search_query = models.CharField(max_length=512, blank=True, default="")
    properties = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(
        default=list, blank=True, help_text="Quality warnings recorded when the event was accepted."
    )
    txid = models.BigIntegerField(
        db_default=CurrentTransactionId(),
        editable=False,
        help_text="Id of the inserting transaction: the rollups' fold order (ADR 0011).",
    )

    class Meta:
        indexes = [
            models.Index(fields=["timestamp"], name="event_ts_idx"),
            models.Index(fields=["event_type", "timestamp"], name="event_type_ts_idx"),
            models.Index(fields=["session_id", "timestamp"], name="event_session_ts_idx"),
            models.Index(fields=["received_at"], name="event_received_idx"),
            # Erasure finds a person's events by user id (governance.services.erasure).
            models.Index(fields=["user_id"], name="event_user_idx"),
            # Fold order of the rollups and their raw tail (events.receive_order).
            models.Index(fields=["txid", "id"], name="event_txid_idx"),
            # Quality rule order-id-unique-per-day looks orders up per batch; only purchases
            # carry an order id, so the partial index costs nothing for other events.
            models.Index(
                fields=["order_id", "timestamp"],
                name="event_order_ts_idx",
                condition=~models.Q(order_id=""),
            ),
            # The Data quality page counts events accepted with warnings per hour; few have any.
            models.Index(
                fields=["received_at"],
                name="event_warned_recv_idx",
                condition=~models.Q(warnings=[]),
            ),
        ]
        # Checked for logged-in users (roles are groups holding these; keys have scopes).
        permissions = [
            ("read_events", "Can read events through the API (stats, recent)"),
            ("export_events", "Can export raw events"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class EventKey(models.Model):
    """The event_id of every event stored on PostgreSQL: the dedupe key across the events
    table's time partitions, which cannot hold a unique index on event_id alone (ADR 0021).

    Claimed by a trigger on each insert into events_event (every path: API, replay, COPY), and
    kept when the event goes (retention, erasure): a late resend stays a duplicate. Unused on
    SQLite, where the events table keeps its unique index.
    """

    event_id = models.UUIDField(primary_key=True)
    received_at = models.DateTimeField()

    def __str__(self) -> str:
        return str(self.event_id)


class KeyScope(models.TextChoices):
    """What a key may do. `write` sends events; `read` reads stats and recent events; `export`
    downloads raw events; `admin` calls administrative endpoints (erasure)."""

    WRITE = "write"
    READ = "read"
    EXPORT = "export"
    ADMIN = "admin"


def _validate_scopes(value: object) -> None:
    if not isinstance(value, list) or not set(value) <= set(KeyScope.values):
        raise ValidationError(f"Scopes are a list of: {', '.join(KeyScope.values)}.")


class IngestionKey(models.Model):
    """An API key. Only a SHA-256 hash is stored; the key is shown once.

    A rotated key points to its successor (`replaced_by`) and stays valid until its expiry.
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, editable=False, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    is_active = models.BooleanField(default=True, help_text="Untick to revoke (within a second).")
    scopes = models.JSONField(
        default=list,
        blank=True,
        validators=[_validate_scopes],
        help_text="write, read, export, admin",
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    replaced_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(excluded_fields=["last_used_at"])

    class Meta:
        permissions = [("use_admin_api", "Can call administrative API endpoints (erasure)")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @staticmethod
    def hash_key(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode()).hexdigest()


class RejectedEvent(models.Model):
    """An event we refused, kept with why, so that nothing sent is silently dropped.

    The raw payload is stored as ASCII-escaped JSON text (bounded): that survives NUL bytes and
    unpaired surrogates, which PostgreSQL text and jsonb columns cannot hold.
    """

    class Status(models.TextChoices):
        QUARANTINED = "quarantined"
        REPLAYED = "replayed"

    event_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    event_type = models.CharField(max_length=64, blank=True, default="")
    raw_payload = models.TextField()
    raw_truncated = models.BooleanField(default=False)
    reasons = models.JSONField(default=list)
    rule_ids = models.JSONField(default=list, blank=True)
    source_key = models.ForeignKey(
        IngestionKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    received_at = models.DateTimeField(db_index=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUARANTINED, db_index=True
    )
    replay_count = models.PositiveIntegerField(default=0)
    replayed_at = models.DateTimeField(null=True, blank=True)
    # One row per bad event, however often it is resent (ADR 0009): `received_at` stays the
    # first time seen (the intake rollups count it there, once); a resend adds to `attempts`
    # and moves `last_seen_at`.
    dedupe_key = models.CharField(max_length=80, unique=True, editable=False)
    attempts = models.PositiveIntegerField(default=1)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    txid = models.BigIntegerField(
        db_default=CurrentTransactionId(),
        editable=False,
        help_text="Id of the inserting transaction: the intake rollups' fold order (ADR 0011).",
    )

    class Meta:
        indexes = [
            models.Index(fields=["status", "received_at"], name="rejected_status_recv_idx"),
            models.Index(fields=["txid", "id"], name="rejected_txid_idx"),
        ]

    def __str__(self) -> str:
        return f"rejected {self.event_type or '?'} {self.event_id or self.pk}"

    @property
    def payload(self) -> object:
        """The payload as parsed JSON, or the raw text when it was truncated or not JSON."""
        if self.raw_truncated:
            return self.raw_payload
        try:
            return json.loads(self.raw_payload)
        except ValueError:
            return self.raw_payload


# The audit trail of who may do what: users (their groups, i.e. roles) and groups (their
# permissions), recorded by django-simple-history like keys, rules and checks. Secrets and
# login times are not recorded.
simple_history.register(
    get_user_model(),
    app="events",
    m2m_fields=["groups"],
    excluded_fields=["password", "last_login"],
    table_name="events_historicaluser",
)
simple_history.register(
    Group, app="events", m2m_fields=["permissions"], table_name="events_historicalgroup"
)
