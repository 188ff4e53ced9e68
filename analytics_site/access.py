"""Roles: three groups (made by a data migration in reports) and how they reach Django's checks.

- Viewer: dashboards and their CSV downloads (`reports.view_dashboards`, `reports.download_csv`).
- Analyst: Viewer's, plus the admin site for rules, checks, incidents, the quarantine and its
  replay, and API reads and exports (`events.read_events`, `events.export_events`).
- Admin: every permission (keys, users, groups, erasure), granted by `RoleBackend` so that a
  model added later needs no new migration to be administered.

Superusers pass every check, as in Django. Pages and endpoints check permissions, never group
names; only this module (and the migration) know which group holds what.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.contrib.auth.backends import ModelBackend

VIEWER = "Viewer"
ANALYST = "Analyst"
ADMIN = "Admin"
ROLES = (VIEWER, ANALYST, ADMIN)
ADMIN_SITE_ROLES = (ANALYST, ADMIN)

_ROLE_CACHE = "_analytics_roles_cache"

VIEWER_PERMISSIONS = ("reports.view_dashboards", "reports.download_csv")
ANALYST_PERMISSIONS = (
    *VIEWER_PERMISSIONS,
    "events.read_events",
    "events.export_events",
    "events.view_event",
    "events.view_rejectedevent",
    "events.change_rejectedevent",  # the quarantine's replay action
    *(
        f"quality.{action}_{model}"
        for model in ("qualityrule", "qualitycheck")
        for action in ("add", "change", "delete", "view")
    ),
    "quality.view_rulecounter",
    "quality.view_checkrun",
    "quality.view_qualityincident",
    "quality.change_qualityincident",
    "quality.view_replayjob",
)


def roles_sync(group_model: Any, permission_model: Any) -> None:
    """Create the role groups and give them their permissions (idempotent). Takes the models so
    that the data migration can pass its historical ones; Admin gets every permission that
    exists now, and later ones through RoleBackend."""
    for role, names in ((VIEWER, VIEWER_PERMISSIONS), (ANALYST, ANALYST_PERMISSIONS)):
        group, _ = group_model.objects.get_or_create(name=role)
        for name in names:
            app_label, codename = name.split(".")
            group.permissions.add(
                permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            )
    admin, _ = group_model.objects.get_or_create(name=ADMIN)
    admin.permissions.add(*permission_model.objects.all())


def user_roles(user: Any) -> frozenset[str]:
    """The role groups of a user, read once per user object (one query per request)."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "pk", None):
        return frozenset()
    cached = getattr(user, _ROLE_CACHE, None)
    if cached is None:
        names = user.groups.filter(name__in=ROLES).values_list("name", flat=True)
        cached = frozenset(names)
        setattr(user, _ROLE_CACHE, cached)
    return cached


class RoleBackend(ModelBackend):
    """Django's model backend, plus: an active member of the Admin group has every permission."""

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        if user_obj.is_active and ADMIN in user_roles(user_obj):
            return True
        return super().has_perm(user_obj, perm, obj)

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        if user_obj.is_active and ADMIN in user_roles(user_obj):
            return True
        return super().has_module_perms(user_obj, app_label)


class RoleAdminSite(AdminSite):
    """The admin site, open to staff as before and to the Analyst and Admin roles; each model
    page still checks its own permissions."""

    def has_permission(self, request) -> bool:
        user = request.user
        if not user.is_active:
            return False
        return bool(user.is_staff or user_roles(user) & set(ADMIN_SITE_ROLES))
