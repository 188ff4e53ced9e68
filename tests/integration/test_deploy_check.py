"""`manage.py check --deploy --fail-level WARNING` passes with production settings: the
environment a production deployment documents (docs/runbooks/security-settings.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": "k" * 20 + "-production-like-secret-with-many-characters-0123456789",
    "ALLOWED_HOSTS": "analytics.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://analytics.example.com",
    "TLS_ENABLED": "true",
    "TRUSTED_PROXIES": "10.0.0.0/8",
}


# Set by the test run itself (pytest, the browser tests' conftest), never in a deployment.
TEST_ONLY_VARIABLES = {
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "PYTEST_VERSION",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}


def _deploy_check(**overrides: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in TEST_ONLY_VARIABLES}
    env.update(PRODUCTION_ENV, **overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_production_settings():
    result = _deploy_check()
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_fails_without_tls():
    """The check is not vacuous: production without HTTPS redirect and HSTS is refused."""
    result = _deploy_check(TLS_ENABLED="false")
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout
