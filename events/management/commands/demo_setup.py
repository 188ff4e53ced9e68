"""Prepare the demo: a login printed on screen and sample data (only when there is none)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand

from events.models import Event

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-analytics"  # noqa: S105 - a printed demo login, development only


class Command(BaseCommand):
    help = "Create the demo login and load sample data for `make demo`."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--events", type=int, default=20000)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--port", type=int, default=8000, help="where the server will listen")

    def handle(self, *args, events: int, seed: int, port: int, **options) -> None:
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"email": "demo@example.com"}
        )
        user.is_staff = True
        user.is_superuser = True
        user.set_password(DEMO_PASSWORD)
        user.save()
        # The Admin role too (groups made by a migration), so the demo shows a role-based login.
        user.groups.add(*Group.objects.filter(name="Admin"))
        call_command("load_default_rules")  # before the data, so bad events meet the rules
        if not Event.objects.exists():
            call_command("generate_sample_data", events=events, seed=seed)
        # Dashboards read rollups plus the raw tail; fold the sample in (nothing else ingests).
        call_command("rebuild_rollups", no_safety_lag=True)
        call_command("run_quality_checks", rules=True)  # incidents to find in admin
        site = f"http://localhost:{port}"
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Demo ready: open {site}/ and sign in as {DEMO_USERNAME} / {DEMO_PASSWORD}\n"
                f"  API docs: {site}/docs   Admin: {site}/admin/\n"
            )
        )
