"""Ingestion keys: scopes decide what a key may call, expiry and rotation, the ingestion_key
command (the raw key printed once), and the permission class other endpoints use."""

from __future__ import annotations

import datetime as dt
import io
import re
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from events import services
from events.models import Event, IngestionKey
from events.permissions import HasScope
from tests.factories import event_payload
from tests.helpers import error_pairs, user_with_role

pytestmark = pytest.mark.django_db
RAW_KEY = re.compile(r"^ek_[A-Za-z0-9_\-]{20,}$", re.MULTILINE)


def _client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def _answers(raw_key: str) -> dict[str, int]:
    client = _client(raw_key)
    return {
        "write": client.post("/events", event_payload(), format="json").status_code,
        "stats": client.get("/events/stats").status_code,
        "recent": client.get("/events/recent?limit=1").status_code,
    }


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (["write"], {"write": 201, "stats": 403, "recent": 403}),
        (["read"], {"write": 403, "stats": 200, "recent": 200}),
        (["write", "read"], {"write": 201, "stats": 200, "recent": 200}),
        (["export", "admin"], {"write": 403, "stats": 403, "recent": 403}),
    ],
)
def test_a_key_may_call_only_what_its_scopes_allow(scopes, expected):
    created = services.ingestion_key_create(name="scoped", scopes=scopes)
    assert _answers(created.raw_key) == expected


def test_the_former_can_read_flag_still_maps_to_scopes():
    """Callers of the old signature keep their meaning: can_read=False is a write-only key."""
    assert services.ingestion_key_create(name="w", can_read=False).key.scopes == ["write"]
    assert services.ingestion_key_create(name="rw").key.scopes == ["read", "write"]


def test_unknown_scopes_are_refused():
    with pytest.raises(ValueError, match="Unknown scopes"):
        services.ingestion_key_create(name="bad", scopes=["write", "delete"])


def test_an_expired_key_is_401_and_stores_nothing():
    created = services.ingestion_key_create(
        name="old", expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    response = _client(created.raw_key).post("/events", event_payload(), format="json")
    assert response.status_code == 401
    assert ("Authorization", "valid_key") in error_pairs(response.json())
    assert Event.objects.count() == 0


def test_rotation_keeps_the_old_key_working_until_it_expires():
    old = services.ingestion_key_create(name="shop", scopes=["write"])
    new = services.ingestion_key_rotate(key_id=old.key.pk, grace=dt.timedelta(hours=2))
    old.key.refresh_from_db()
    assert new.raw_key != old.raw_key
    assert (new.key.name, new.key.scopes, new.key.expires_at) == ("shop", ["write"], None)
    assert old.key.replaced_by_id == new.key.pk
    assert old.key.expires_at - timezone.now() > dt.timedelta(hours=1, minutes=59)
    for raw_key in (old.raw_key, new.raw_key):
        assert _answers(raw_key)["write"] == 201
    IngestionKey.objects.filter(pk=old.key.pk).update(expires_at=timezone.now())
    services.ingestion_key_revoke(key_id=new.key.pk)  # and a revoked key cannot be rotated
    with pytest.raises(ValueError, match="revoked or expired"):
        services.ingestion_key_rotate(key_id=new.key.pk)


def _command(*args: str) -> str:
    out = io.StringIO()
    call_command("ingestion_key", *args, stdout=out)
    return out.getvalue()


def test_the_command_creates_lists_rotates_and_revokes_showing_the_raw_key_once():
    created = _command("create", "checkout", "--scopes", "write,export", "--expires", "30")
    raw_key = RAW_KEY.search(created).group(0)
    key = IngestionKey.objects.get(name="checkout")
    assert key.key_hash == IngestionKey.hash_key(raw_key)
    assert key.scopes == ["export", "write"]
    assert dt.timedelta(days=29) < key.expires_at - timezone.now() <= dt.timedelta(days=30)

    listing = _command("list")
    assert key.prefix in listing and "write" in listing and raw_key not in listing

    rotated = _command("rotate", key.prefix, "--grace-hours", "1")
    new_raw_key = RAW_KEY.search(rotated).group(0)
    assert new_raw_key != raw_key
    assert _answers(raw_key)["write"] == _answers(new_raw_key)["write"] == 201

    _command("revoke", str(key.pk))
    time.sleep(1.0)  # the promise: refused everywhere within a second
    assert _answers(raw_key)["write"] == 401
    assert "revoked" in _command("list", "--all")
    with pytest.raises(CommandError, match="No single key"):
        _command("revoke", "ek_nothing")
    with pytest.raises(CommandError, match="Unknown scopes"):
        _command("create", "x", "--scopes", "write,everything")


class _AdminOnlyApi(APIView):
    permission_classes = [HasScope("admin")]

    def get(self, request):
        return Response({"ok": True})


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("key:admin", 200),
        ("key:write,read,export", 403),
        ("role:Admin", 200),
        ("role:Analyst", 403),
        ("role:Viewer", 403),
        ("anonymous", 401),
    ],
)
def test_has_scope_admits_keys_with_the_scope_and_users_whose_role_grants_it(who, expected):
    """`HasScope("admin")` is what the erasure endpoint uses: an admin-scoped key or the Admin
    role (superusers too); anyone else is refused."""
    request = APIRequestFactory().get("/anything")
    kind, _, value = who.partition(":")
    if kind == "key":
        raw_key = services.ingestion_key_create(name="k", scopes=value.split(",")).raw_key
        request.META["HTTP_AUTHORIZATION"] = f"Bearer {raw_key}"
    elif kind == "role":
        request.user = user_with_role(value)
        request._force_auth_user = request.user
    assert _AdminOnlyApi.as_view()(request).status_code == expected


def test_has_scope_refuses_an_unknown_scope_at_import_time():
    with pytest.raises(ValueError, match="Unknown scope"):
        HasScope("superpowers")
