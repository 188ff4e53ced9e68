"""The admin app with the project's site (analytics_site.access.RoleAdminSite: open to roles).

Its own module, because INSTALLED_APPS imports it before models exist."""

from django.contrib.admin.apps import AdminConfig


class RoleAdminConfig(AdminConfig):
    default_site = "analytics_site.access.RoleAdminSite"
