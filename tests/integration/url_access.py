"""The machinery of the role table test (test_role_table.py): every URL pattern of the URL
conf, made concrete, and requested as each role."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from events import services as event_services
from events.models import Person
from governance.services.erasure import erasure_request_create
from quality.models import AlertOutbox, CheckRun, QualityIncident, RuleCounter
from quality.services import replay
from tests.factories import (
    EventFactory,
    QualityCheckFactory,
    QualityRuleFactory,
    RejectedEventFactory,
    event_payload,
)
from tests.helpers import user_with_role

ROLES = (
    "anonymous",
    "viewer",
    "analyst",
    "admin",
    "key:write",
    "key:read",
    "key:export",
    "key:admin",
)
ADMIN_MODEL_ROUTE = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/(?P<rest>.*)$")


@dataclass(frozen=True)
class Route:
    pattern: str  # the full pattern string, as the table names it
    name: str


def routes_walk(patterns=None, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    """Every URL pattern, recursively, with its full pattern string."""
    for item in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(item, URLResolver):
            inner = namespace + (f"{item.namespace}:" if item.namespace else "")
            yield from routes_walk(item.url_patterns, prefix + str(item.pattern), inner)
        elif isinstance(item, URLPattern):
            yield Route(prefix + str(item.pattern), namespace + (item.name or ""))


def admin_model_action(pattern: str) -> tuple[str, str] | None:
    """("app.model", action) for a ModelAdmin's route; None for other routes."""
    match = ADMIN_MODEL_ROUTE.match(pattern)
    if not match or match["app"] == "password_change":
        return None
    rest = match["rest"]
    action = {
        "": "changelist",
        "add/": "add",
        "<path:object_id>/history/": "history",
        "^([^/]+)/history/([^/]+)/$": "history_item",  # simple-history's revert form
        "<path:object_id>/delete/": "delete",
        "<path:object_id>/change/": "change",
        "<path:object_id>/": "object",
    }.get(rest, rest)
    return f"{match['app']}.{match['model']}", action


def _person_create() -> Person:
    event_services.person_identify(
        user_id="table-person",
        anonymous_id="table-anon-person",
        traits={"plan": "pro"},
        timestamp=timezone.now(),
        source="api",
    )
    return Person.objects.get(distinct_id="table-person")


def objects_create() -> dict[str, object]:
    """One object of every model the admin shows, so object URLs are real."""
    check = QualityCheckFactory()
    rule = QualityRuleFactory(enabled=False)  # so it rejects none of the events sent
    interval = IntervalSchedule.objects.create(every=1, period="minutes")
    now = timezone.now()
    return {
        "events.event": EventFactory(),
        "events.rejectedevent": RejectedEventFactory(),
        "events.ingestionkey": event_services.ingestion_key_create(name="table").key,
        "events.person": _person_create(),
        "auth.user": user_with_role(None, username="somebody"),
        "auth.group": Group.objects.get(name="Viewer"),
        "quality.qualitycheck": check,
        "quality.qualityrule": rule,
        "quality.checkrun": CheckRun.objects.create(
            quality_check=check, ran_at=now, duration_ms=1, threshold=1, outcome="pass"
        ),
        "quality.qualityincident": QualityIncident.objects.create(
            source_type="check",
            source_key=f"check:{check.pk}",
            quality_check=check,
            title="t",
            opened_at=now,
            last_seen_at=now,
        ),
        "quality.replayjob": replay.replay_job_create([], user=None),
        "quality.rulecounter": RuleCounter.objects.create(
            rule_key="k", name="n", bucket=now.replace(minute=0, second=0, microsecond=0)
        ),
        "quality.alertoutbox": AlertOutbox.objects.create(
            event="opened",
            delivery_id="table",
            payload={},
            created_at=now,
            next_attempt_at=now,
            retry_until=now,
        ),
        "governance.erasurerequest": erasure_request_create(
            user_id="table-user", via="admin", enqueue=False
        ),
        "axes.accessattempt": AccessAttempt.objects.create(
            ip_address="10.0.0.1", username="x", attempt_time=now, failures_since_start=1
        ),
        "axes.accesslog": AccessLog.objects.create(
            ip_address="10.0.0.1", username="x", attempt_time=now
        ),
        "axes.accessfailurelog": AccessFailureLog.objects.create(
            ip_address="10.0.0.1", username="x", attempt_time=now
        ),
        "django_celery_beat.intervalschedule": interval,
        "django_celery_beat.crontabschedule": CrontabSchedule.objects.create(),
        "django_celery_beat.solarschedule": SolarSchedule.objects.create(
            event="sunrise", latitude=0, longitude=0
        ),
        "django_celery_beat.clockedschedule": ClockedSchedule.objects.create(
            clocked_time=now + dt.timedelta(days=1)
        ),
        "django_celery_beat.periodictask": PeriodicTask.objects.create(
            name="table", task="quality.run_scheduled", interval=interval
        ),
    }


def concrete_url(route: Route, objects: dict[str, object]) -> str:
    """A URL for the pattern: parameters filled with real objects, regex syntax dropped."""
    path = route.pattern
    model_action = admin_model_action(path)
    if model_action and model_action[0] in objects:
        obj = objects[model_action[0]]
        history = getattr(obj, "history", None)
        if history is not None and "history/([^/]+)/$" in path:
            item = f"{obj.pk}/history/{history.latest().history_id}/"
            path = path.replace("^([^/]+)/history/([^/]+)/$", item)
        path = re.sub(r"<(path:object_id|int:rule_id|id)>", str(obj.pk), path)
    path = path.replace("<slug:page>/csv/<slug:table>", "overview/csv/kpis")
    path = path.replace("<int:check_id>", str(objects["quality.qualitycheck"].pk))
    path = path.replace("<uidb64>/<token>", "MQ/not-a-token")
    path = path.replace("r/<path:content_type_id>/<path:object_id>", "r/1/999999")
    path = path.replace("(?P<app_label>", "").replace("(?P<url>.*)", "nowhere/")
    path = re.sub(r"django_celery_beat\|[\w|]+\)", "quality", path)
    path = re.sub(r"\(\?P<token>[^)]*\)", "pk_token", path).replace("\\.", ".")
    return "/" + re.sub(r"\^|\$|/\?", "", path)


def client_for(role: str, users: dict[str, object]) -> Client:
    client = Client()
    kind, _, value = role.partition(":")
    if kind == "key":
        raw_key = event_services.ingestion_key_create(name=role, scopes=[value]).raw_key
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw_key}"
    elif role != "anonymous":
        client.force_login(users[role])
    return client


# One message every Segment call accepts (each path reads the fields of its call).
SEGMENT_MESSAGE = {
    "userId": "role-table",
    "event": "Role Table",
    "previousId": "role-table-anonymous",
    "groupId": "role-table-group",
}


def status_of(client: Client, route: Route, url: str) -> int:
    if route.name.startswith("trackers:segment-"):
        batch = route.name.startswith("trackers:segment-batch")
        body = {"batch": [{**SEGMENT_MESSAGE, "type": "track"}]} if batch else SEGMENT_MESSAGE
        return client.post(url, json.dumps(body), content_type="application/json").status_code
    if route.name.endswith(("ingest", "batch")):
        body = {"events": [event_payload()]} if route.name.endswith("batch") else event_payload()
        return client.post(url, json.dumps(body), content_type="application/json").status_code
    if route.name.endswith(("identify", "alias")):
        body = {"user_id": "table-user", "anonymous_id": "table-anon", "previous_id": "table-anon"}
        body.pop("previous_id" if route.name.endswith("identify") else "anonymous_id")
        return client.post(url, json.dumps(body), content_type="application/json").status_code
    return client.get(url).status_code
