"""The ingestion fast path: event POSTs from API clients skip most of Django's request machinery.

What it is. Under WSGI, `handler.IngestAwareWSGIHandler` sends a POST to an ingestion path
(/events, /events/batch, the same under /api/v1/; the tracker protocols' batch endpoints
/v1/batch, /batch/ and Snowplow's tp2) that carries no Cookie header to a second,
short middleware chain; every other request takes Django's handler and settings.MIDDLEWARE.
Routing, authentication by ingestion key, permissions, throttling, parsing and errors stay in
DRF and are the same on both paths. A browser with a session still takes the full chain, so
session authentication and CSRF work as before.

What it mirrors (and so must be checked again on a Django upgrade):
- `middleware.IngestHeadersMiddleware`: SecurityMiddleware, CommonMiddleware and
  XFrameOptionsMiddleware, as one layer (same checks, same headers in the same order);
- `middleware.IngestMetricsMiddleware`: django_prometheus's Before/After middlewares;
- `signals.RequestSignals`: what Django's own receivers of request_started and request_finished
  do (reset_queries, close_old_connections, close_caches, reset_urlconf), done without sending
  the signals while those are the only receivers; and HttpResponseBase.close(), which needs the
  private `_resource_closers` of a response;
- `handler.ShortStackWSGIHandler`: WSGIHandler.__call__ and BaseHandler.load_middleware.
The other middlewares of settings.MIDDLEWARE are not needed by an API client's POST (sessions,
CSRF, auth, messages, htmx, static files): `checks.NOT_NEEDED` says why for each.

Why. For a single event the full stack and the signal dispatch were a large share of the
application's CPU (figures in benchmarks/README.md; decision in docs/adr/0004).

Fences:
- `INGEST_FASTPATH=false` (settings) switches it off: event POSTs then take Django's WSGIHandler
  and the full MIDDLEWARE. The ingestion test suites run on both paths.
- A middleware in settings.MIDDLEWARE that is in neither `checks.MIRRORED` nor
  `checks.NOT_NEEDED` is a system-check Error (fastpath.E001) and makes the WSGI application
  refuse to start (ImproperlyConfigured): it would otherwise be skipped silently.
- A Django feature release other than `checks.VERIFIED_DJANGO_SERIES` is a system-check Warning
  (fastpath.W001): read Django's release notes for the pieces above, run the ingestion suites
  on both paths, then move the constant.
"""
