"""WSGI entry point (gunicorn analytics_site.wsgi)."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
django.setup(set_prefix=False)  # what django.core.wsgi.get_wsgi_application() does first

from django.conf import settings  # noqa: E402

from analytics_site.db_deadline import db_deadline_install  # noqa: E402
from analytics_site.fastpath.handler import wsgi_application  # noqa: E402 - needs settings

# A web request waiting on PostgreSQL gives up after DB_CLIENT_TIMEOUT_SECONDS, and new
# connections fail fast for DB_UNREACHABLE_HOLD_SECONDS after a timeout (ADR 0008).
db_deadline_install(settings.DB_CLIENT_TIMEOUT_SECONDS, settings.DB_UNREACHABLE_HOLD_SECONDS)

# Django's WSGIHandler, with a short middleware chain for event POSTs from API clients unless
# INGEST_FASTPATH is off (analytics_site/fastpath/).
application = wsgi_application()

# Everything loaded so far (Django, the apps, compiled schemas) lives as long as the process:
# move it out of the collector's sight, so that the garbage collections a 500-event batch
# triggers do not walk it again each time (about a quarter of a batch's CPU time otherwise).
gc.freeze()
# A 500-event batch holds thousands of containers at once (the parsed body, the rows, the
# outcomes), a tracker protocol's batch over 20,000 (each message's nested context, device and
# properties dicts besides its translation), and frees them by reference counting when it is
# answered. A young collection that starts mid-request walks them all and frees nothing: at
# the default first threshold (700) about eight per batch, 2-3 us of a realistic event's ~40 us
# in the worker; at 20,000, /v1/batch and PostHog's /batch/ still set one off every five
# batches, about 1.1 us per event (benchmarks/history.md, 2026-12-06). Above a batch's peak,
# a request's objects are gone before any collection runs; reference cycles are still
# collected, after GC_YOUNG_THRESHOLD new containers (a few MB at most).
GC_YOUNG_THRESHOLD = 100_000
gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
