"""Who may open what: EVERY URL pattern of the URL conf (walked recursively, so a new URL with
no entry here fails) requested as each role: anonymous, Viewer, Analyst, Admin (a user in the
Admin group, not a superuser), and keys with one scope each.

Admin site routes: anonymous visitors, Viewers and keys (which the admin ignores) are sent to
the admin login (302); Analysts and Admins get what their model permissions allow. Each
ModelAdmin's routes are checked by its model's policy below; a new model admin, or a new
custom admin URL, needs an entry.
"""

from __future__ import annotations

import pytest

from tests.helpers import user_with_role
from tests.integration.url_access import (
    ROLES,
    admin_model_action,
    client_for,
    concrete_url,
    objects_create,
    routes_walk,
    status_of,
)

pytestmark = pytest.mark.django_db

# Order: anonymous, viewer, analyst, admin, key:write, key:read, key:export, key:admin.
OPEN = (200,) * 8
PAGE = (302, 200, 200, 200, 302, 302, 302, 302)  # dashboards and CSV: any role, no key
SIGNED_IN = (302, 200, 200, 200, 302, 302, 302, 302)
ADMIN_SITE = (302, 302, 200, 200, 302, 302, 302, 302)  # Analyst and Admin only
INGEST = (401, 201, 201, 201, 201, 403, 403, 403)
BATCH = (401, 200, 200, 200, 200, 403, 403, 403)
IDENTITY = (401, 200, 200, 200, 200, 403, 403, 403)  # /identify, /alias: like /events
READ = (401, 403, 200, 200, 403, 200, 403, 403)
# Tracker protocols: ingestion keys only (a signed-in user has no key), the write scope.
TRACKER = (401, 401, 401, 401, 200, 403, 403, 403)
NOT_FOUND = (404,) * 8
TRACKER_POST = (401, 401, 401, 401, 405, 403, 403, 403)

ROUTES: dict[str, tuple[int, ...]] = {
    "": PAGE,
    "funnel/": PAGE,
    "products/": PAGE,
    "audience/": PAGE,
    "live/": PAGE,
    "quality/": PAGE,
    "quality/checks/<int:check_id>/": PAGE,
    "<slug:page>/csv/<slug:table>/": PAGE,
    "metrics": OPEN,  # open outside production; test_metrics_access covers production
    "accounts/login/": OPEN,
    "accounts/logout/": (405,) * 8,  # POST only
    "accounts/password_change/": SIGNED_IN,
    "accounts/password_change/done/": SIGNED_IN,
    # Password reset exists only when a mail backend can send (tests: console backend off).
    "accounts/password_reset/": NOT_FOUND,
    "accounts/password_reset/done/": NOT_FOUND,
    "accounts/reset/<uidb64>/<token>/": NOT_FOUND,
    "accounts/reset/done/": NOT_FOUND,
    "favicon.ico": (302,) * 8,  # to the static icon
    "api/schema/": OPEN,
    "docs": OPEN,
    "docs/": OPEN,
    "redoc/": OPEN,
    "^events/?$": INGEST,
    "^events/batch/?$": BATCH,
    "^events/stats/?$": READ,
    "^events/recent/?$": READ,
    "^identify/?$": IDENTITY,
    "^alias/?$": IDENTITY,
    "^health/?$": OPEN,
    "^health/live/?$": OPEN,
    "^health/ready/?$": OPEN,
    "api/v1/^events/?$": INGEST,
    "api/v1/^events/batch/?$": BATCH,
    "api/v1/^events/stats/?$": READ,
    "api/v1/^events/recent/?$": READ,
    "api/v1/^identify/?$": IDENTITY,
    "api/v1/^alias/?$": IDENTITY,
    "api/v1/^health/?$": OPEN,
    "api/v1/^health/live/?$": OPEN,
    "api/v1/^health/ready/?$": OPEN,
    # POST only: a GET that passes the permission (admin role, admin scope) is 405
    "api/v1/^erasure/?$": (401, 403, 403, 405, 403, 403, 403, 405),
    **{f"^v1/{call}/?$": TRACKER for call in ("batch", "track", "page", "screen")},
    **{f"^v1/{call}/?$": TRACKER for call in ("identify", "group", "alias")},
    **{f"^v1/{letter}/?$": TRACKER for letter in "btpsiga"},  # analytics.js (ADR 0037)
    # analytics.js's settings: the same for anyone (ADR 0037)
    r"^v1/projects/(?P<token>[A-Za-z0-9_\-]{1,128})/settings$": OPEN,
    # Tracker protocols: keys only (a signed-in user is no SDK); GET on a POST endpoint is 405
    # once the key may write. The pixel (GET) and the flag answers (anyone) are 200.
    **dict.fromkeys(
        (
            "batch/",
            "capture/",
            "e/",
            "i/v0/e/",
            "i/v0/ai/batch/",
            "i/v1/analytics/events",
            "com.snowplowanalytics.snowplow/tp2",
        ),
        TRACKER_POST,
    ),
    # posthog-js's remote config: the same for anyone (ADR 0030)
    r"^array/(?P<token>[A-Za-z0-9_\-]{1,128})/config$": OPEN,
    r"^array/(?P<token>[A-Za-z0-9_\-]{1,128})/config\.js$": OPEN,
    "i": (401, 401, 401, 401, 200, 403, 403, 403),
    "flags/": OPEN,
    "decide/": OPEN,
    "admin/events/event/export/": ADMIN_SITE,
    "admin/events/rejectedevent/export/": ADMIN_SITE,
    "admin/": ADMIN_SITE,
    "admin/login/": (200, 200, 302, 302, 200, 200, 200, 200),  # signed-in staff go on
    "admin/logout/": (302, 302, 405, 405, 302, 302, 302, 302),  # POST only
    "admin/password_change/": ADMIN_SITE,
    "admin/password_change/done/": ADMIN_SITE,
    "admin/autocomplete/": (302, 302, 403, 403, 302, 302, 302, 302),  # no field asked
    "admin/jsi18n/": ADMIN_SITE,
    "admin/r/<path:content_type_id>/<path:object_id>/": (302, 302, 404, 404, 302, 302, 302, 302),
    "admin/^(?P<app_label>django_celery_beat|axes|events|auth|quality|governance)/$": ADMIN_SITE,
    "admin/(?P<url>.*)$": (302, 302, 404, 404, 302, 302, 302, 302),
}

# Admin model policies: status per action, for (Analyst, Admin).
ACTIONS = ("changelist", "add", "history", "history_item", "delete", "change", "object")
EDIT = dict(zip(ACTIONS, (200, 200, 200, 200, 200, 200, 302), strict=True))
VIEW = {**EDIT, "add": 403, "delete": 403}
NONE = {action: 403 for action in ACTIONS} | {"object": 302}  # `object` redirects to change
NO_ADD = {**EDIT, "add": 403}
TRY = {"<int:rule_id>/try/": 200}  # the rule admin's "try on recent events" page

ADMIN_MODELS: dict[str, tuple[dict[str, int], dict[str, int]]] = {
    "quality.qualityrule": (
        {**EDIT, "<int:rule_id>/try/": 200},
        {**EDIT, "<int:rule_id>/try/": 200},
    ),
    "quality.qualitycheck": (EDIT, EDIT),
    "quality.checkrun": (VIEW, NO_ADD),
    "quality.qualityincident": (VIEW, NO_ADD),  # Analysts change (acknowledge), not delete
    "quality.replayjob": (VIEW, NO_ADD),
    "quality.rulecounter": (VIEW, NO_ADD),
    "events.event": (VIEW, EDIT),
    "events.rejectedevent": (VIEW, NO_ADD),  # the replay action needs change: Analysts have it
    "events.ingestionkey": (NONE, EDIT),
    # People: read-only (written by identify/alias, removed by erasure); the Admin's.
    "events.person": (NONE, VIEW),
    "auth.user": ({**NONE, "<id>/password/": 403}, {**EDIT, "<id>/password/": 200}),
    "auth.group": (NONE, EDIT),
    "django_celery_beat.periodictask": (NONE, EDIT),
    "quality.alertoutbox": (NONE, NO_ADD),  # written by incidents, resent by the Admin
    "governance.erasurerequest": (NONE, EDIT),  # erasure is the Admin's
    "axes.accessattempt": (NONE, NO_ADD),  # lockouts: the Admin clears them
    "axes.accesslog": (NONE, NO_ADD),
    "axes.accessfailurelog": (NONE, NO_ADD),
    "django_celery_beat.clockedschedule": (NONE, EDIT),
    "django_celery_beat.crontabschedule": (NONE, EDIT),
    "django_celery_beat.solarschedule": (NONE, EDIT),
    "django_celery_beat.intervalschedule": (NONE, EDIT),
}


def _expected(pattern: str) -> tuple[int, ...] | None:
    if pattern in ROUTES:
        return ROUTES[pattern]
    model_action = admin_model_action(pattern)
    if model_action is None or model_action[0] not in ADMIN_MODELS:
        return None
    label, action = model_action
    analyst, admin = (policy.get(action) for policy in ADMIN_MODELS[label])
    if analyst is None or admin is None:
        return None
    return (302, 302, analyst, admin, 302, 302, 302, 302)


def test_every_url_pattern_has_an_entry_in_the_table():
    missing = [route.pattern for route in routes_walk() if _expected(route.pattern) is None]
    assert missing == [], "add these URL patterns to the role table"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_the_expected_status_on_every_url(role):
    users = {name.lower(): user_with_role(name) for name in ("Viewer", "Analyst", "Admin")}
    objects = objects_create()
    client = client_for(role, users)
    column = ROLES.index(role)
    wrong = []
    for route in routes_walk():
        expected = _expected(route.pattern)
        if expected is None:
            continue  # reported by the test above
        url = concrete_url(route, objects)
        status = status_of(client, route, url)
        if status != expected[column]:
            wrong.append(f"{url} ({route.pattern}): {status}, expected {expected[column]}")
    assert wrong == []


def test_a_user_without_a_role_sees_no_dashboard_and_no_admin(client):
    """Signed in but in no group: refused (403) rather than shown data."""
    client.force_login(user_with_role(None))
    assert client.get("/").status_code == 403
    assert client.get("/overview/csv/kpis/").status_code == 403
    assert client.get("/events/stats").status_code == 403
    assert client.get("/admin/").status_code == 302


def test_a_viewer_without_the_csv_permission_cannot_download(client):
    viewer = user_with_role("Viewer")
    viewer.user_permissions.clear()
    viewer.groups.get().permissions.remove(
        *viewer.groups.get().permissions.filter(codename="download_csv")
    )
    client.force_login(viewer)
    assert client.get("/").status_code == 200
    assert client.get("/overview/csv/kpis/").status_code == 403
