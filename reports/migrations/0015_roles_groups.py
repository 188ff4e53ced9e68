"""The role groups Viewer, Analyst and Admin (analytics_site.access says what each may do).

Permissions are normally created after migrations; they are created here first, so this runs
on a fresh database too. Existing active users without a role become Viewers, so they keep the
dashboards they could see before roles existed; staff keep the admin as before.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from analytics_site.access import ROLES, VIEWER, roles_sync


def roles_create(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group = apps.get_model("auth", "Group")
    roles_sync(group, apps.get_model("auth", "Permission"))
    viewer = group.objects.get(name=VIEWER)
    user = apps.get_model("auth", "User")
    for existing in user.objects.filter(is_active=True, is_superuser=False, groups=None):
        existing.groups.add(viewer)


def roles_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("events", "0005_key_scopes_history_roles"),
        ("quality", "0004_rule_check_replay_history"),
        ("reports", "0014_dashboard_permissions"),
    ]

    operations = [migrations.RunPython(roles_create, roles_delete)]
