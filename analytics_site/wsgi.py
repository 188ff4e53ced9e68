"""WSGI entry point (gunicorn analytics_site.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
application = get_wsgi_application()

# Everything loaded so far (Django, the apps, compiled schemas) lives as long as the process:
# move it out of the collector's sight, so that the garbage collections a 500-event batch
# triggers do not walk it again each time (about a quarter of a batch's CPU time otherwise).
gc.freeze()
