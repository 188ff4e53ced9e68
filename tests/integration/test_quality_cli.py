"""`run_quality_checks --now --json --no-incidents` as CI uses it: exit 0 on passing data, 1 on
failing data, 2 on errors, the JSON it prints, and that --no-incidents writes nothing."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from quality.models import AlertOutbox, CheckRun, QualityCheck, QualityIncident
from tests.factories import EventFactory, QualityCheckFactory

NOW = timezone.now().replace(microsecond=0)


def ago(**delta) -> dt.datetime:
    return NOW - dt.timedelta(**delta)


def run_cli(*args: str) -> tuple[int, dict]:
    out = io.StringIO()
    try:
        call_command("run_quality_checks", *args, stdout=out)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, json.loads(out.getvalue())


@pytest.fixture
def two_checks(require_postgres, db):
    QualityCheckFactory(name="fresh", kind="freshness", threshold=15)
    QualityCheckFactory(
        name="country-nulls", kind="null_rate", threshold=0.2, params={"field": "country"}
    )


@pytest.mark.django_db
def test_passing_data_exits_0_with_json_and_writes_nothing(two_checks):
    """Fresh events with countries pass; the JSON names each check's status, metric, threshold
    and window; with --no-incidents no run, incident or alert row is written."""
    for minutes in (2, 10, 20):
        EventFactory(timestamp=ago(minutes=minutes), country="DE")
    code, doc = run_cli("--now", NOW.isoformat(), "--json", "--no-incidents")
    assert code == 0
    by_name = {c["name"]: c for c in doc["checks"]}
    assert by_name["fresh"]["status"] == "pass" and round(by_name["fresh"]["metric"]) == 2
    assert by_name["fresh"]["window"] is None and by_name["fresh"]["threshold"] == 15
    nulls = by_name["country-nulls"]
    assert (nulls["status"], nulls["metric"], nulls["details"]) == (
        "pass",
        0.0,
        {"numerator": 0, "denominator": 3},
    )
    assert nulls["window"] == {
        "minutes": 60,
        "start": ago(minutes=60).isoformat(),
        "end": NOW.isoformat(),
    }
    assert doc["summary"] == {
        "now": NOW.isoformat(),
        "status": "pass",
        "total": 2,
        "pass": 2,
        "fail": 0,
        "skipped": 0,
        "error": 0,
    }
    assert not CheckRun.objects.exists() and not QualityIncident.objects.exists()
    assert not AlertOutbox.objects.exists()
    assert QualityCheck.objects.filter(last_run_at__isnull=False).count() == 0


@pytest.mark.django_db
def test_failing_data_exits_1_and_now_moves_the_clock(two_checks):
    """Half the events lack a country: the null-rate check fails, exit 1. The same data judged
    as of two hours later makes freshness fail too and leaves nothing in the window."""
    EventFactory(timestamp=ago(minutes=5), country="DE")
    EventFactory(timestamp=ago(minutes=6), country="")
    code, doc = run_cli("--now", NOW.isoformat(), "--json", "--no-incidents")
    assert code == 1
    statuses = {c["name"]: c["status"] for c in doc["checks"]}
    assert statuses == {"fresh": "pass", "country-nulls": "fail"}
    assert doc["summary"]["status"] == "fail" and doc["summary"]["fail"] == 1

    later = (NOW + dt.timedelta(hours=2)).isoformat()
    code, doc = run_cli("--now", later, "--json", "--no-incidents")
    statuses = {c["name"]: c["status"] for c in doc["checks"]}
    assert code == 1 and statuses == {"fresh": "fail", "country-nulls": "skipped"}
    assert not CheckRun.objects.exists() and not QualityIncident.objects.exists()


@pytest.mark.django_db
def test_without_no_incidents_runs_are_recorded_and_incidents_opened(two_checks):
    """--json alone keeps the normal behaviour (runs stored, incident opened) and exits 1."""
    EventFactory(timestamp=ago(minutes=5), country="")
    code, doc = run_cli("--now", NOW.isoformat(), "--json")
    assert code == 1 and doc["summary"]["fail"] == 1
    assert CheckRun.objects.count() == 2
    assert QualityIncident.objects.get().source_key.startswith("check:")


@pytest.mark.django_db
def test_a_check_that_raises_exits_2(two_checks):
    """A check whose params cannot work is an error (exit 2), not a failure."""
    QualityCheck.objects.filter(name="country-nulls").update(params={})
    EventFactory(timestamp=ago(minutes=5))
    code, doc = run_cli("--json", "--no-incidents")
    bad = next(c for c in doc["checks"] if c["name"] == "country-nulls")
    assert code == 2 and bad["status"] == "error" and "KeyError" in bad["message"]
    assert doc["summary"]["status"] == "error"


@pytest.mark.django_db
def test_bad_arguments_exit_2(two_checks):
    for args, message in (
        (("--now", "yesterday"), "not an ISO 8601"),
        (("--check", "nope"), "Unknown check"),
        (("--rules", "--no-incidents"), "not with --no-incidents"),
    ):
        with pytest.raises(CommandError, match=message) as caught:
            call_command("run_quality_checks", "--json", *args)
        assert caught.value.returncode == 2


def test_database_down_exits_2():
    """From the shell, as CI runs it: no database to reach -> exit 2 and a message."""
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:8429/analytics_qcli"}
    done = subprocess.run(
        [sys.executable, "manage.py", "run_quality_checks", "--json", "--no-incidents"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "database error" in done.stderr
