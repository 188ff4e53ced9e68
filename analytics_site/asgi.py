"""ASGI entry point. Django's handler and the full MIDDLEWARE for every request: the ingestion
fast path (analytics_site/fastpath/) is WSGI only."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
application = get_asgi_application()
