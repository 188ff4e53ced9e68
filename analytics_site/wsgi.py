"""WSGI entry point (gunicorn analytics_site.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
application = get_wsgi_application()
