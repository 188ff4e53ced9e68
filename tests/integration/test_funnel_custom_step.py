"""A custom event as a funnel step (REPORTS_FUNNEL_STEPS, ADR 0015): a process started with the
setting folds sessions by the custom funnel, and its funnel and products pages equal raw SQL
over the same events, from the raw tail and after a rebuild. The setting is read at start-up,
so a real process runs it, on the test database."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid

import pytest
from django.db import connection

from tests.conftest import ROOT
from tests.factories import EventFactory

pytestmark = pytest.mark.postgres

STEPS = ["page_view", "product_view", "newsletter_signup", "add_to_cart", "checkout_start"]
STEPS.append("purchase")
DAY = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
# Sessions by the event types they hold (in time order).
SESSIONS = [
    ["page_view"],
    ["page_view", "product_view"],
    ["page_view", "product_view", "newsletter_signup"],
    ["page_view", "newsletter_signup"],
    ["product_view", "newsletter_signup", "add_to_cart"],
    ["page_view", "add_to_cart", "checkout_start"],
    ["page_view", "product_view", "newsletter_signup", "add_to_cart", "checkout_start", "purchase"],
    ["newsletter_signup", "video_played"],
]
READ = """
import json, datetime as dt, django
django.setup()
from reports.filters import filters_from_query
from reports.selectors import pages
from reports.services.rollups import rollups_rebuild
now = dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
f = filters_from_query({"start": "2026-03-01", "end": "2026-03-03"}, now=now)
def read():
    funnel = pages.funnel(f)
    cart = pages.products(f)["cart_abandonment"]
    return {"steps": [[s["step"], s["sessions"]] for s in funnel["steps"]],
            "carts": cart["carts"], "purchased": cart["purchased"]}
tail = read()
rollups_rebuild(now=now)
print(json.dumps({"tail": tail, "rolled_up": read()}))
"""


def _events() -> None:
    for index, types in enumerate(SESSIONS):
        for offset, event_type in enumerate(types):
            EventFactory(
                event_id=uuid.uuid4(),
                event_type=event_type,
                session_id=f"funnel_s{index}",
                user_id=f"funnel_u{index}",
                timestamp=DAY + dt.timedelta(hours=index, minutes=offset),
                received_at=DAY + dt.timedelta(hours=index, minutes=offset, seconds=5),
                **({"order_id": f"o{index}", "revenue": 10} if event_type == "purchase" else {}),
            )


def _reference() -> dict:
    """Open funnel: a session reaches a step when its furthest step is at or after it."""
    case = " ".join(f"WHEN '{step}' THEN {index + 1}" for index, step in enumerate(STEPS))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT MAX(CASE event_type {case} ELSE 0 END) FROM events_event "  # noqa: S608
            "WHERE session_id LIKE 'funnel_s%%' GROUP BY session_id"
        )
        furthest = [row[0] for row in cursor.fetchall()]
    steps = [[step, sum(1 for f in furthest if f >= i + 1)] for i, step in enumerate(STEPS)]
    cart = STEPS.index("add_to_cart") + 1
    purchased = sum(1 for f in furthest if f == len(STEPS))
    return {"steps": steps, "carts": sum(1 for f in furthest if f >= cart), "purchased": purchased}


def test_a_custom_event_counts_as_a_funnel_step(require_postgres, transactional_db):
    _events()
    db = connection.settings_dict
    user, host, port = db.get("USER") or "postgres", db.get("HOST") or "127.0.0.1", db.get("PORT")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "analytics_site.settings",
        "DATABASE_URL": f"postgres://{user}@{host}:{port or 5432}/{db['NAME']}",
        "ENVIRONMENT": "testing",
        "REPORTS_FUNNEL_STEPS": ",".join(STEPS),
    }
    result = subprocess.run(
        [sys.executable, "-c", READ], cwd=ROOT, env=env, capture_output=True, timeout=300
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    read = json.loads(result.stdout.decode().strip().splitlines()[-1])
    expected = _reference()
    assert expected["steps"][2] == ["newsletter_signup", 6]  # the data exercises the step
    assert read == {"tail": expected, "rolled_up": expected}
