"""Health, throttling, ingestion keys, read permissions, docs and the browsable API, through
the real HTTP stack (APIClient) on PostgreSQL and Redis."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache
from django.db import connection, connections
from django.test import Client
from rest_framework.test import APIClient

from events import services
from events.models import Event, IngestionKey
from tests.factories import EventFactory, event_payload
from tests.helpers import error_pairs, user_with_role

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("require_postgres")]

CLOSED_PORT = 1  # nothing listens there: a real refused connection, not a mock


# ----------------------------------------------------------------------------- health
def test_health_is_200_with_components_when_all_is_up(require_redis, api_client):
    response = api_client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["components"]["database"]["status"] == "ok"
    assert body["components"]["broker"] == {"status": "ok", "mode": "redis"}


def test_health_is_200_degraded_when_only_the_broker_is_down(api_client, settings):
    """REDIS_URL pointing at a closed port: the broker is reported down, the database up, and
    the answer stays 200 (the web still ingests; a load balancer must not eject it)."""
    settings.REDIS_URL = f"redis://127.0.0.1:{CLOSED_PORT}/0"
    response = api_client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["components"]["broker"] == {"status": "down", "mode": "redis"}
    assert body["components"]["database"] == {"status": "ok"}


def test_health_is_503_when_the_database_is_down(require_redis):
    """A database connection that really fails (a closed port) gets 503 naming the database,
    with the broker still up, and no host, port or driver error in the body."""
    db = connections.settings["default"]
    saved = (db.get("HOST"), db.get("PORT"))
    db["HOST"], db["PORT"] = "127.0.0.1", CLOSED_PORT
    try:
        response = APIClient().get("/health")
    finally:
        db["HOST"], db["PORT"] = saved
    assert response.status_code == 503
    body = response.json()
    assert body["components"]["database"] == {"status": "down"}
    assert body["components"]["broker"]["status"] == "ok"
    assert body["status"] == "down"
    assert "127.0.0.1" not in json.dumps(body)


# ----------------------------------------------------------------------------- throttling
def test_ingestion_over_the_rate_is_429_with_a_json_body(tiny_rates, keyed_client):
    """The 4th request in the window is refused with 429, Retry-After and field/rule."""
    codes = [
        keyed_client.post("/events", event_payload(), format="json").status_code for _ in range(4)
    ]
    assert codes == [201, 201, 201, 429]
    refused = keyed_client.post("/events/batch", {"events": [event_payload()]}, format="json")
    assert refused.status_code == 429
    assert refused["Content-Type"].startswith("application/json")
    assert ("request", "rate_limit") in error_pairs(refused.json())
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert refused.json()["retry_after_seconds"] > 0
    assert Event.objects.count() == 3


def test_throttling_counts_per_key(tiny_rates, keyed_client):
    """One busy key does not throttle another."""
    for _ in range(3):
        keyed_client.post("/events", event_payload(), format="json")
    assert keyed_client.post("/events", event_payload(), format="json").status_code == 429
    other = APIClient()
    other.credentials(HTTP_X_API_KEY=services.ingestion_key_create(name="other").raw_key)
    assert other.post("/events", event_payload(), format="json").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_requests_from_several_threads_count_in_one_window(tiny_rates, dev_mode):
    """Each thread has its own Django cache object and keeps its own Redis client for it; the
    requests of all threads still count in the same window."""

    def post(_: int = 0) -> int:
        try:
            payload = event_payload()
            return Client().post("/events", payload, content_type="application/json").status_code
        finally:
            connections.close_all()

    codes = [post()]
    with ThreadPoolExecutor(max_workers=2) as pool:
        codes += sorted(pool.map(post, range(2)))
    codes.append(post())
    assert codes == [201, 201, 201, 429]
    assert Event.objects.count() == 3


def test_throttle_windows_expire_in_redis(tiny_rates, keyed_client):
    """A window's counter is created with an expiry of about its period, and keeps it."""
    for _ in range(2):
        assert keyed_client.post("/events", event_payload(), format="json").status_code == 201
    redis = cache._cache.get_client(write=True)
    keys = list(redis.scan_iter(match="*throttle:ingest:*"))
    assert len(keys) == 1
    assert 3500 < redis.ttl(keys[0]) <= 3601
    assert int(redis.get(keys[0])) == 2


def test_reads_are_throttled_too(tiny_rates, keyed_client):
    codes = [keyed_client.get("/events/stats").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_throttle_can_be_switched_off(tiny_rates, keyed_client):
    tiny_rates.INGEST_THROTTLE_ENABLED = False
    codes = {
        keyed_client.post("/events", event_payload(), format="json").status_code for _ in range(5)
    }
    assert codes == {201}


# ----------------------------------------------------------------------------- keys
def test_admin_shows_a_new_key_once_and_stores_only_its_hash(client, django_user_model):
    """The add view's message carries the raw key; the database and later pages never do."""
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-1234-x")
    client.force_login(admin)
    response = client.post(
        "/admin/events/ingestionkey/add/",
        {"name": "shop frontend", "is_active": "on", "scopes": ["write", "read"], "_save": "Save"},
        follow=True,
    )
    assert response.status_code == 200
    messages = " ".join(str(message) for message in response.context["messages"])
    raw_key = re.search(r"ek_[A-Za-z0-9_\-]{20,}", messages).group(0)
    key = IngestionKey.objects.get(name="shop frontend")
    assert key.key_hash == hashlib.sha256(raw_key.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM events_ingestionkey")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert raw_key not in stored
    assert raw_key[:10] in stored  # the prefix is kept to recognise the key
    for page in (f"/admin/events/ingestionkey/{key.pk}/change/", "/admin/events/ingestionkey/"):
        assert raw_key not in client.get(page).content.decode()
    sender = APIClient()
    sender.credentials(HTTP_X_API_KEY=raw_key)
    assert sender.post("/events", event_payload(), format="json").status_code == 201


def test_a_key_added_inactive_in_admin_does_not_work(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-1234-x")
    client.force_login(admin)
    response = client.post(
        "/admin/events/ingestionkey/add/", {"name": "later", "_save": "Save"}, follow=True
    )
    messages = " ".join(str(message) for message in response.context["messages"])
    raw_key = re.search(r"ek_[A-Za-z0-9_\-]{20,}", messages).group(0)
    key = IngestionKey.objects.get(name="later")
    assert (key.is_active, key.scopes) == (False, [])
    sender = APIClient()
    sender.credentials(HTTP_X_API_KEY=raw_key)
    assert sender.post("/events", event_payload(), format="json").status_code == 401


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"])
def test_bearer_and_x_api_key_both_authenticate(ingestion_key, header):
    value = ingestion_key.raw_key
    client = APIClient()
    client.credentials(**{header: f"Bearer {value}" if header == "HTTP_AUTHORIZATION" else value})
    assert client.post("/events", event_payload(), format="json").status_code == 201
    assert client.get("/events/stats").status_code == 200
    assert client.get("/events/recent?limit=5").status_code == 200


def test_inactive_key_is_401(ingestion_key):
    IngestionKey.objects.filter(pk=ingestion_key.key.pk).update(is_active=False)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ingestion_key.raw_key}")
    response = client.post("/events", event_payload(), format="json")
    assert response.status_code == 401
    assert ("Authorization", "valid_key") in error_pairs(response.json())
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert Event.objects.count() == 0


def test_unknown_key_and_no_key_are_refused(api_client):
    refused = api_client.post("/events", event_payload(), format="json")
    assert refused.status_code == 401
    assert ("Authorization", "authentication_required") in error_pairs(refused.json())
    api_client.credentials(HTTP_X_API_KEY="ek_not-a-real-key")
    assert api_client.post("/events/batch", {"events": []}, format="json").status_code == 401
    assert Event.objects.count() == 0


def test_key_use_is_recorded(ingestion_key, keyed_client):
    keyed_client.post("/events", event_payload(), format="json")
    ingestion_key.key.refresh_from_db()
    assert ingestion_key.key.last_used_at is not None


# ----------------------------------------------------------------------------- reads
@pytest.mark.parametrize("path", ["/events/stats", "/events/recent?limit=5"])
def test_reads_need_a_login_or_a_key_outside_development(api_client, path, django_user_model):
    assert api_client.get(path).status_code == 401
    api_client.force_authenticate(user=user_with_role("Analyst"))
    assert api_client.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/events/stats", "/events/recent"])
def test_a_write_only_key_cannot_read(path):
    key = services.ingestion_key_create(name="writer", can_read=False)
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key.raw_key)
    assert client.post("/events", event_payload(), format="json").status_code == 201
    response = client.get(path)
    assert response.status_code == 403
    assert ("Authorization", "permission") in error_pairs(response.json())


def test_development_mode_reads_and_writes_anonymously(dev_mode, api_client):
    """ENVIRONMENT=development: the README's example runs without a key."""
    assert api_client.post("/events", event_payload(), format="json").status_code == 201
    assert api_client.get("/events/stats").json()["total_events"] == 1


# ----------------------------------------------------------------------------- docs
def test_openapi_schema_lists_the_event_endpoints(api_client):
    response = api_client.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    for path in ("/events/", "/events/batch/", "/events/stats/", "/events/recent/", "/health/"):
        assert path in paths
        assert f"/api/v1{path}" in paths
    assert "post" in paths["/events/batch/"]
    assert "limit" in json.dumps(paths["/events/recent/"])


@pytest.mark.parametrize("path", ["/docs", "/docs/", "/api/schema/", "/redoc/"])
def test_docs_pages_answer(api_client, path):
    assert api_client.get(path).status_code == 200


def test_browsable_api_renders_for_a_logged_in_user(client, django_user_model):
    """DRF's browsable API: the stats endpoint as an HTML page."""
    client.force_login(user_with_role("Analyst"))
    EventFactory()
    response = client.get("/events/stats", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Event Stats" in page and "total_events" in page


def test_an_event_posted_from_the_browsable_api_gets_its_html_page(client, django_user_model):
    """A browser (Accept: text/html) that posts an event gets DRF's browsable page with the
    outcome, while an API client gets the bare JSON; both store the event."""
    client.force_login(user_with_role("Analyst"))
    payload = event_payload()
    page = client.post(
        "/events", json.dumps(payload), content_type="application/json", HTTP_ACCEPT="text/html"
    )
    assert page.status_code == 201
    assert page["Content-Type"].startswith("text/html")
    assert payload["event_id"] in page.content.decode()
    repeated = client.post("/events", payload, content_type="application/json")
    assert repeated.status_code == 200
    assert repeated["Content-Type"] == "application/json"
    assert repeated.json()["duplicate"] is True
    assert Event.objects.filter(event_id=payload["event_id"]).count() == 1


def test_ingestion_answers_503_not_500_when_the_database_is_down(require_postgres, dev_mode):
    """A request whose database connection really fails gets a JSON 503 with Retry-After."""
    outcome: dict = {}

    def send() -> None:
        thread_connection = connections["default"]
        thread_connection.settings_dict = {
            **thread_connection.settings_dict,
            "HOST": "127.0.0.1",
            "PORT": CLOSED_PORT,
        }
        try:
            outcome["response"] = APIClient().post("/events", event_payload(), format="json")
        finally:
            thread_connection.close()

    worker = threading.Thread(target=send)
    worker.start()
    worker.join(timeout=30)
    response = outcome["response"]
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert ("database", "available") in error_pairs(response.json())
    assert str(CLOSED_PORT).encode() not in response.content  # no host, port or driver text
    assert b"127.0.0.1" not in response.content and b"connection" not in response.content
