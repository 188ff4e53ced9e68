"""Helpers shared by the ingestion test modules: requests through the site's WSGI application
(as gunicorn sends them), error pairs, the send-twice idempotency check, raw payload builders,
and a plain PostgreSQL connection beside Django's."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection

from analytics_site.access import roles_sync
from events.models import RejectedEvent
from tests.factories import event_payload


def error_pairs(body: dict) -> set[tuple[str, str]]:
    """The (field, rule) of each error in an API answer's body (or a batch result)."""
    return {(error["field"], error["rule"]) for error in body.get("errors", [])}


@dataclass
class WsgiResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes
    handler_class: type | None  # the Django handler that answered

    def __getitem__(self, header: str) -> str:
        return self.headers[header]

    def json(self) -> Any:
        return json.loads(self.content)

    def error_pairs(self) -> set[tuple[str, str]]:
        return error_pairs(self.json())


class WsgiClient:
    """Sends requests to a WSGI application with WSGI environs, the way gunicorn calls it (the
    Django test client would always take Django's handler and the full middleware)."""

    def __init__(self, application: Callable, *, fastpath: bool) -> None:
        self.application = application
        self.fastpath = fastpath  # whether the application has the ingestion fast path
        self.headers: dict[str, str] = {}

    def credentials(self, **headers: str) -> None:
        """Headers sent with every later request (HTTP_AUTHORIZATION=..., HTTP_X_API_KEY=...)."""
        self.headers = headers

    def request(
        self, method: str, path: str, body: bytes = b"", *, signals: bool = False, **headers: str
    ) -> WsgiResponse:
        """One request. With signals=False (inside a test's transaction) close_old_connections
        is disconnected from the request signals, as Django's test client does, so that they
        do not close the connection that holds the test's transaction."""
        path, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "SCRIPT_NAME": "",
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
            **self.headers,
            **headers,
        }
        started: dict = {}

        def start_response(status, response_headers, exc_info=None):
            started["status"] = int(status.split()[0])
            started["headers"] = dict(response_headers)

        if not signals:
            request_started.disconnect(close_old_connections)
            request_finished.disconnect(close_old_connections)
        try:
            result = self.application(environ, start_response)
            try:
                content = b"".join(result)
                handler_class = getattr(result, "_handler_class", None)
            finally:
                result.close()
        finally:
            if not signals:
                request_started.connect(close_old_connections)
                request_finished.connect(close_old_connections)
        return WsgiResponse(started["status"], started["headers"], content, handler_class)

    def post_json(self, path: str, payload: Any, **options: Any) -> WsgiResponse:
        body = orjson.dumps(payload)
        return self.request("POST", path, body, CONTENT_TYPE="application/json", **options)

    def post_raw(
        self, path: str, body: bytes, content_type: str = "application/json", **options: Any
    ) -> WsgiResponse:
        return self.request("POST", path, body, CONTENT_TYPE=content_type, **options)

    def get(self, path: str, **options: Any) -> WsgiResponse:
        return self.request("GET", path, **options)


def send_twice(client: WsgiClient, path: str, payload: dict) -> tuple[dict, dict]:
    """Sends one event twice: 201 accepted, then 200 duplicate naming the same stored id."""
    first = client.post_json(path, payload)
    assert first.status_code == 201, first.content
    assert first.json()["status"] == "accepted" and first.json()["duplicate"] is False
    second = client.post_json(path, payload)
    assert second.status_code == 200, second.content
    assert second.json()["duplicate"] is True
    assert second.json()["id"] == first.json()["id"]
    return first.json(), second.json()


def assert_refused(response, status: int, field: str, rule: str) -> dict:
    """The documented status, JSON, and an errors entry naming the field and the rule."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert (field, rule) in error_pairs(body), body
    return body


def assert_kept(body: dict, field: str, rule: str) -> RejectedEvent:
    """The refused request or event is a RejectedEvent with that reason."""
    rejected = RejectedEvent.objects.get(pk=body["rejected_id"])
    assert {(r["field"], r["rule"]) for r in rejected.reasons} >= {(field, rule)}
    return rejected


def raw_event(**fields: str) -> bytes:
    """A valid event as JSON text, with some fields replaced by raw JSON text (escapes kept)."""
    payload = event_payload()
    text = json.dumps({key: value for key, value in payload.items() if key not in fields})
    extra = ", ".join(f'"{key}": {value}' for key, value in fields.items())
    return (text[:-1] + ", " + extra + "}").encode()


def nested(depth: int) -> dict:
    """A dict nested `depth` levels deep."""
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def postgres_admin_connection() -> psycopg.Connection:
    """A separate plain connection to the test database's server (not Django's), to end a
    backend with pg_terminate_backend."""
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"] or "postgres",
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
    )


ROLE_TEST_PASSWORD = "pw-role-123"


def user_with_role(role: str | None, username: str | None = None, password: str = ""):
    """A user in one of the role groups (Viewer, Analyst, Admin) or in none. The groups come
    from a data migration; a transactional test's flush removes them, so they are re-made."""
    roles_sync(Group, Permission)
    user = get_user_model().objects.create_user(
        username=username or f"{(role or 'norole').lower()}-user",
        password=password or ROLE_TEST_PASSWORD,
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user
