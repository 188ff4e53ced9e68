"""A rule edited here reaches another, already running process within seconds, without a
restart: the process polls the rule-set version (QUALITY_RULES_CACHE_SECONDS=1)."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from quality.services.rules import rule_save
from tests.factories import QualityRuleFactory

ROOT = Path(__file__).resolve().parents[2]
VALIDATING_PROCESS = """
import os, time
import django
django.setup()
from quality.validators import EventValidator
from tests.factories import purchase_payload
validator = EventValidator()
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    result = validator.validate_event(purchase_payload(price=150, quantity=1, revenue=150))
    print("valid" if result.is_valid else "invalid", flush=True)
    time.sleep(0.05)
"""


def _env() -> dict[str, str]:
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="analytics_site.settings",
        ENVIRONMENT="testing",
        QUALITY_RULES_CACHE_SECONDS="1",
        DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
    )
    return env


def _next_answer(lines: queue.Queue, wanted: str, timeout: float) -> float | None:
    """Seconds until the process answers `wanted`, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if lines.get(timeout=0.5).strip() == wanted:
                return time.monotonic() - started
        except queue.Empty:
            continue
    return None


@pytest.mark.django_db(transaction=True)
def test_an_edit_reaches_a_running_process_within_seconds(require_postgres):
    rule = QualityRuleFactory(name="price-cap", kind="range", field="price", params={"max": 100})
    rule_save(rule)  # committed, version bumped
    process = subprocess.Popen(
        [sys.executable, "-c", VALIDATING_PROCESS],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()
    try:
        assert _next_answer(lines, "invalid", timeout=15) is not None, "the process never started"
        rule.params = {"max": 1000}
        rule_save(rule)
        took = _next_answer(lines, "valid", timeout=10)
        assert took is not None and took < 3, f"edit not applied by the other process ({took})"
    finally:
        process.kill()
        process.wait(timeout=5)
