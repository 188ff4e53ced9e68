"""Stored shop events, the events we refused (kept with reasons), and ingestion keys."""

import hashlib
import json
import re

import simple_history
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from events.fields import JSONTextField
from events.receive_order import CurrentTransactionId
from events.schema import UNKNOWN_COUNTRY
from events.storage_models import EventKey, OriginalBatch  # noqa: F401  (models of this app)


class EventType(models.TextChoices):
    """The seven e-commerce types, which keep their field requirements and drive the funnel,
    products and revenue. Any other bounded printable name is a custom event (ADR 0014)."""

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
    # On PostgreSQL event_type, user_id and session_id are COLLATE "C", and the indexes
    # event_type_ts_idx, event_session_ts_idx and event_txid_idx have deduplicate_items = off
    # (migration 0015, ADR 0040); the model cannot say so (SQLite). An AlterField of these
    # columns must keep COLLATE "C" by hand.
    event_type = models.CharField(
        max_length=128, help_text="One of the e-commerce types, or a custom event name."
    )
    timestamp = models.DateTimeField(help_text="Event time in UTC, corrected for clock skew.")
    client_timestamp = models.DateTimeField(
        null=True, blank=True, help_text="Timestamp as sent by the client, before skew correction."
    )
    received_at = models.DateTimeField(help_text="Server time when the event was accepted.")
    user_id = models.CharField(max_length=128, blank=True, default="")
    # At least one of user_id and anonymous_id is set (the schema layer refuses neither).
    anonymous_id = models.CharField(max_length=128, blank=True, default="", db_default="")
    session_id = models.CharField(max_length=128)
    device_type = models.CharField(max_length=16, choices=DeviceType.choices)
    country = models.CharField(
        max_length=2, help_text=f"ISO 3166-1 alpha-2; {UNKNOWN_COUNTRY} when unknown"
    )
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
    derived = models.JSONField(
        default=list,
        db_default=[],
        blank=True,
        help_text="Names of the fields the server derived (session_id, device_type, country).",
    )
    source = models.CharField(
        max_length=16,
        default="api",
        db_default="api",
        help_text="Protocol that delivered the event: api, segment, posthog, snowplow, tracker.",
    )
    original = JSONTextField(
        null=True,
        blank=True,
        help_text="The original message when a protocol translated it (json: ADR 0026).",
    )
    # Where the original is when the column above is null: line `original_line` (from 1) of
    # OriginalBatch `original_batch_id` (ADR 0041). No foreign key: its check would cost every
    # insert, and retention deletes a batch only once no event points at it.
    original_batch_id = models.BigIntegerField(null=True, blank=True, editable=False)
    original_line = models.IntegerField(null=True, blank=True, editable=False)
    client_ip = models.GenericIPAddressField(
        null=True, blank=True, help_text="Kept only when STORE_CLIENT_IP is on."
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
            # Session derivation finds the neighbours of an anonymous visitor's events.
            models.Index(
                fields=["anonymous_id", "timestamp"],
                name="event_anon_ts_idx",
                condition=~models.Q(anonymous_id=""),
            ),
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


class KeyKind(models.TextChoices):
    """A secret key is for servers (any scopes, header only). A public key ships in web pages:
    it may only write, only from the origins listed on it, under its own rate limit (ADR 0018)."""

    SECRET = "secret"  # noqa: S105 (a kind of key, not a password)
    PUBLIC = "public"


_ORIGIN = re.compile(r"^https?://(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$")


def origin_normalize(value: str) -> str:
    """'https://Shop.example.com/' -> 'https://shop.example.com': the form browsers send in
    `Origin` (scheme, host, port only); ValueError for anything else (paths, wildcards)."""
    text = value.strip().rstrip("/").lower()
    if not _ORIGIN.match(text):
        raise ValueError(f"{value!r} is not an origin like https://shop.example.com")
    return text


def _validate_origins(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("Allowed origins are a list of origins (https://shop.example.com).")
    for item in value:
        try:
            if origin_normalize(item) != item:
                raise ValueError(f"{item!r}: write it as {origin_normalize(item)!r}")
        except ValueError as error:
            raise ValidationError(str(error)) from None


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
    kind = models.CharField(
        max_length=8,
        choices=KeyKind.choices,
        default=KeyKind.SECRET,
        help_text="secret: servers, header only. public: web pages, write only, listed origins.",
    )
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        validators=[_validate_origins],
        help_text="Public keys: the sites' origins, e.g. https://shop.example.com",
    )
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

    def clean(self) -> None:
        if self.kind == KeyKind.PUBLIC:
            if set(self.scopes) - {KeyScope.WRITE}:
                raise ValidationError({"scopes": "A public key may only write."})
            if not self.allowed_origins:
                raise ValidationError({"allowed_origins": "A public key needs its origins."})
        elif self.allowed_origins:
            raise ValidationError({"allowed_origins": "Only public keys are bound to origins."})

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
    # A tracker protocol's message is kept as sent (the original); replaying it translates it
    # again (ADR 0029), with what the translation took from its request besides the message.
    source = models.CharField(
        max_length=16,
        default="api",
        db_default="api",
        help_text="Protocol that delivered it: api, segment, posthog, snowplow.",
    )
    translation = models.JSONField(
        null=True,
        blank=True,
        help_text="For one message of a protocol: the request's part of its translation (the "
        "path's call type, the batch's send time, the User-Agent). Empty for whole requests.",
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


class Person(models.Model):
    """One visitor as far as we know: all ids linked to `distinct_id` are this person.

    `distinct_id` is the person's canonical id: their user id once identified, else the
    anonymous id an identify call named. Distinct-user numbers count these (ADR 0015).
    """

    distinct_id = models.CharField(max_length=128, unique=True)
    first_seen = models.DateTimeField(help_text="Earliest identify or alias time seen.")
    last_seen = models.DateTimeField(help_text="Latest identify or alias time seen.")
    traits = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "people"

    def __str__(self) -> str:
        return self.distinct_id


class PersonLink(models.Model):
    """An id (an anonymous id, or a user id aliased away) that belongs to another person.

    `user_id` is always a canonical id (never itself linked): a person's events are those whose
    id is `user_id` or any `linked_id` pointing at it, found with one join (ADR 0015).
    """

    linked_id = models.CharField(max_length=128, unique=True)
    user_id = models.CharField(max_length=128, db_index=True)
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="links")
    source = models.CharField(max_length=32, help_text="Which call linked it: api, segment...")
    linked_at = models.DateTimeField(help_text="Time of the call that linked the ids.")

    def __str__(self) -> str:
        return f"{self.linked_id} → {self.user_id}"
