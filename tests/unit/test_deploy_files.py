"""The compose file and the deploy workflow parse and keep their hardening (Docker cannot run
in the test environment; what Docker would do is checked in docs/runbooks/deploy.md)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker/docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APPS = ("web", "worker", "beat")


def test_secrets_come_from_the_env_file_not_the_compose_file():
    text = (ROOT / "docker/docker-compose.yml").read_text()
    assert "change-me" not in text and "SECRET_KEY:" not in text
    assert "trust" not in text
    for name in (*APPS, "migrate"):
        assert SERVICES[name]["env_file"] == [".env"]
        assert "${POSTGRES_PASSWORD:?" in SERVICES[name]["environment"]["DATABASE_URL"]
    assert SERVICES["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert (ROOT / ".gitignore").read_text().splitlines().count(".env") == 1


def test_data_lives_in_named_volumes():
    assert SERVICES["db"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert SERVICES["redis"]["volumes"] == ["redisdata:/data"]
    assert "--appendonly" in SERVICES["redis"]["command"]
    assert set(COMPOSE["volumes"]) == {"pgdata", "redisdata"}


def test_migrate_runs_once_before_the_apps():
    migrate = SERVICES["migrate"]
    assert migrate["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert migrate["restart"] == "no"
    for name in APPS:
        depends = SERVICES[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}
        assert depends["db"] == {"condition": "service_healthy"}


def test_long_running_services_restart_and_have_health_checks():
    for name in ("db", "redis", *APPS):
        assert SERVICES[name]["restart"] == "unless-stopped", name
    for name in ("db", "redis", "web", "worker"):
        assert SERVICES[name]["healthcheck"]["test"], name
    assert "/health/ready" in " ".join(SERVICES["web"]["healthcheck"]["test"])
    assert SERVICES["web"]["environment"]["DB_ROLE"] == "web"
    assert SERVICES["worker"]["environment"]["DB_ROLE"] == "worker"


def test_deploy_workflow_builds_migrates_switches_and_rolls_back():
    workflow = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())
    assert list(workflow["jobs"]) == ["build", "deploy"]
    assert workflow["jobs"]["deploy"]["needs"] == "build"
    script = (ROOT / "docker/deploy.sh").read_text()
    for step in ("run --rm migrate", "/health/ready", "nginx -s reload", "ROLLBACK"):
        assert step in script
    subprocess.run(["bash", "-n", str(ROOT / "docker/deploy.sh")], check=True)
