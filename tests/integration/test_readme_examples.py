"""The README's Python examples, run as written against `make demo`'s stack: SQLite, eager
Celery, `runserver`, the demo's sample data and rules.

CI runs the suite on PostgreSQL, so a SQLite-only fault in a path the demo uses (a Segment event
without a session was a 500 in `make demo`, caught by hand in session 7) would land unseen. Here
every `python` block of README.md runs in its own process, as a reader pastes it, with only the
host and the key put in, and the rows they leave are counted straight from the SQLite file.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.own_redis import free_port

ROOT = Path(__file__).resolve().parents[2]
README_HOST = "http://localhost:8000"
README_KEYS = ("ek_your_write_key", "ek_...")


def _readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def _demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "ENVIRONMENT": "development",  # what `make demo` writes into .env
        "SECRET_KEY": "readme-examples-" + "x" * 40,
        "DJANGO_SETTINGS_MODULE": "analytics_site.settings",
        "PYTHONPATH": str(ROOT),
    }
    return env


def _manage(env: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`make demo` minus the scheduler: migrate, demo_setup, a write key, runserver."""
    tmp_path = tmp_path_factory.mktemp("readme-demo")
    env = _demo_env(tmp_path)
    port = free_port()
    _manage(env, "migrate", "--noinput")
    _manage(env, "demo_setup", "--events", "300", "--port", str(port))
    key = _manage(env, "ingestion_key", "create", "readme", "--scopes", "write")
    key = key.strip().splitlines()[-1].strip()
    log = (tmp_path / "runserver.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if requests.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            pytest.fail("runserver did not answer: " + (tmp_path / "runserver.log").read_text())
        yield {"env": env, "base": base, "key": key, "db": tmp_path / "demo.sqlite3"}
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def _run_block(demo: dict, code: str) -> subprocess.CompletedProcess:
    code = code.replace(README_HOST, demo["base"])
    for placeholder in README_KEYS:
        code = code.replace(placeholder, demo["key"])
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=demo["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _count(demo: dict, sql: str, *params) -> int:
    with sqlite3.connect(demo["db"]) as conn:
        return conn.execute(sql, params).fetchone()[0]


def test_the_readme_has_the_examples_this_test_runs():
    """A README rewrite that drops or renames the SDK sections fails here, not silently."""
    blocks = _readme_python_blocks()
    joined = "\n".join(blocks)
    sdks = ("segment.analytics", "rudderstack.analytics", "from posthog", "snowplow_tracker")
    for marker in sdks:
        assert marker in joined
    assert len(blocks) >= 8


def test_every_readme_python_example_runs_and_stores_its_events(demo):
    """Each block exits 0 without a traceback, and what it sends is stored: the README's 2024
    page view, the custom event, one event per tracker SDK (sessions, devices and countries
    derived on SQLite), the identified person; nothing of it lands in quarantine."""
    blocks = _readme_python_blocks()
    api_example = blocks[0]
    before = _count(demo, "SELECT count(*) FROM events_event")
    quarantined_before = _count(demo, "SELECT count(*) FROM events_rejectedevent")
    for code in blocks:
        if "event_data" in code and "event_data =" not in code:
            code = api_example + "\n" + code  # the README: "the dict of the API example above"
        done = _run_block(demo, code)
        assert done.returncode == 0, f"{code}\n--- stderr:\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, done.stderr[-3000:]

    by_source = dict(
        sqlite3.connect(demo["db"])
        .execute("SELECT source, count(*) FROM events_event GROUP BY source")
        .fetchall()
    )
    assert by_source.get("segment", 0) >= 1
    assert by_source.get("posthog", 0) >= 2
    assert by_source.get("snowplow", 0) >= 2
    rudder = "SELECT count(*) FROM events_event WHERE order_id = 'o-1' AND event_type = 'purchase'"
    assert _count(demo, rudder) == 1
    readme_event = "SELECT count(*) FROM events_event WHERE event_id LIKE '123e4567%'"
    assert _count(demo, readme_event) == 1
    assert _count(demo, "SELECT count(*) FROM events_event WHERE session_id = ''") == 0
    assert _count(demo, "SELECT count(*) FROM events_event") >= before + 8
    assert _count(demo, "SELECT count(*) FROM events_rejectedevent") == quarantined_before


def test_stats_and_the_dashboards_answer_on_the_demo(demo):
    """The demo's API totals equal the SQLite rows, and every dashboard renders for the demo
    login after the examples' events arrived."""
    stats = requests.get(f"{demo['base']}/events/stats", timeout=10).json()
    assert stats["total_events"] == _count(demo, "SELECT count(*) FROM events_event")
    session = requests.Session()
    login = session.get(f"{demo['base']}/accounts/login/", timeout=10)
    assert login.status_code == 200
    token = session.cookies["csrftoken"]
    session.post(
        f"{demo['base']}/accounts/login/",
        data={"username": "demo", "password": "demo-analytics", "csrfmiddlewaretoken": token},
        headers={"Referer": f"{demo['base']}/accounts/login/"},
        timeout=10,
    )
    for page in ("/", "/funnel/", "/products/", "/audience/", "/live/", "/quality/"):
        response = session.get(demo["base"] + page, timeout=30)
        assert response.status_code == 200, page
        assert "/login/" not in response.url, page
