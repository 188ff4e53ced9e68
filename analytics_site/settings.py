"""One settings module, configured from the environment and an optional `.env` file.

ENVIRONMENT selects the security defaults: `production` (the default when nothing is set:
DEBUG off, SECRET_KEY required), `testing`, or `development` (DEBUG on, anonymous ingestion).
With no DATABASE_URL the app runs on SQLite in the project folder; with no REDIS_URL Celery
runs tasks eagerly in-process, so the product starts with nothing else installed.
"""

from pathlib import Path

import environ

from analytics_site.settings_operations import (
    alert_outbox_settings,
    governance_settings,
    operations_settings,
)
from analytics_site.settings_scaling import partition_settings, replica_settings
from analytics_site.settings_security import security_settings

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

ENVIRONMENT = env.str("ENVIRONMENT", default="production")
if ENVIRONMENT not in {"development", "testing", "production"}:
    raise ValueError(f"ENVIRONMENT must be development, testing or production, not {ENVIRONMENT!r}")
IS_PRODUCTION = ENVIRONMENT == "production"
IS_DEVELOPMENT = ENVIRONMENT == "development"

DEBUG = env.bool("DEBUG", default=IS_DEVELOPMENT)
if IS_PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")  # required: fails loudly when missing
else:
    SECRET_KEY = env.str("SECRET_KEY", default=f"insecure-{ENVIRONMENT}-key-not-for-production")

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS",
    default=[] if IS_PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"],
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "analytics_site.apps.RoleAdminConfig",  # django.contrib.admin, open to the roles
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "django_prometheus",
    "simple_history",  # the audit trail of admin changes (rules, checks, keys, groups, replays)
    "axes",  # login throttling (security block below)
    "csp",  # Content-Security-Policy (security block below)
    "events",
    "quality",
    "reports",
    "trackers",  # Segment/RudderStack, PostHog, Snowplow protocols and tracker.js (issue 11)
    "governance",  # erasure and retention (issue 13): the top layer
    "analytics_site.fastpath",  # system checks of the ingestion fast path (no models)
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "analytics_site.proxy.TrustedProxyMiddleware",  # before anything reads is_secure() or the IP
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last but the metrics: turns a lockout into its answer
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "analytics_site.urls"
WSGI_APPLICATION = "analytics_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: PostgreSQL through psycopg 3 when DATABASE_URL is set, SQLite otherwise.
# Persistent connections (CONN_MAX_AGE) matter for ingestion latency.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Behind a transaction-pooling PgBouncer (ADR 0022): each transaction may get another server
# connection, so no server-side cursor may outlive one (Django's iterator() outside a
# transaction) and no prepared statement (INGEST_PREPARED_STATEMENTS below).
DATABASE_POOL_MODE = env.str("DATABASE_POOL_MODE", default="session")
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = DATABASE_POOL_MODE == "transaction"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    # A file, not memory, so that a Celery worker process in tests sees the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test_db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: Celery broker and the shared cache (throttling, rule-version signal) when set.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="analytics"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
# Tests run tasks eagerly too, except those that start a real worker (tests/conftest.py).
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL or ENVIRONMENT == "testing"
)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Dashboard rollups: fold newly received events in every ROLLUP_INTERVAL_SECONDS (reports.tasks).
# Events received in the last ROLLUP_SAFETY_LAG_SECONDS stay in the raw tail that readers add.
ROLLUP_INTERVAL_SECONDS = env.int("ROLLUP_INTERVAL_SECONDS", default=10)
ROLLUP_SAFETY_LAG_SECONDS = env.int("ROLLUP_SAFETY_LAG_SECONDS", default=10)
ROLLUP_BATCH_EVENTS = env.int("ROLLUP_BATCH_EVENTS", default=500_000)
# Dashboard values computed from the rollups are cached per rollup state (generation, watermark).
# Each fold starts a new state and the old keys only wait for this expiry, so the cache holds
# about ROLLUP_CACHE_SECONDS / ROLLUP_INTERVAL_SECONDS states (a few MB each at 10M events).
ROLLUP_CACHE_SECONDS = env.int("ROLLUP_CACHE_SECONDS", default=120)
# Funnel steps in order: the five e-commerce steps, optionally with custom event names between
# them (issue 11; checked at start-up). Sessions fold their furthest step: after a change, run
# `manage.py rebuild_rollups` (ADR 0015).
REPORTS_FUNNEL_STEPS = env.list(
    "REPORTS_FUNNEL_STEPS",
    default=["page_view", "product_view", "add_to_cart", "checkout_start", "purchase"],
)
# Intake rollups (Data quality and Live pages, quality.tasks) fold more often: they are cheap
# (three GROUP BYs), and the Live page reads every event received since the last fold.
# RECEIPTS_INTERVAL_SECONDS is the variable's name before issue 10, still read.
INTAKE_INTERVAL_SECONDS = env.int(
    "INTAKE_INTERVAL_SECONDS", default=env.int("RECEIPTS_INTERVAL_SECONDS", default=10)
)
CELERY_BEAT_SCHEDULE = {
    "reports-rollups-advance": {
        "task": "reports.rollups_advance",
        "schedule": ROLLUP_INTERVAL_SECONDS,
        "options": {"expires": ROLLUP_INTERVAL_SECONDS},
    },
    # Data quality page and Live page: fold received and rejected events into the intake
    # rollups (quality.tasks), with the same safety lag as the dashboard rollups.
    "quality-intake-advance": {
        "task": "quality.intake_advance",
        "schedule": INTAKE_INTERVAL_SECONDS,
        "options": {"expires": INTAKE_INTERVAL_SECONDS},
    },
    # Data quality: due dataset checks (each keeps its own interval) and the rule-rate watch.
    "quality-run-scheduled": {
        "task": "quality.run_scheduled",
        "schedule": 60,
        "options": {"expires": 60},
    },
}
# --- Alert outbox (issue 14, ADR 0010): retries with backoff, then dead letters.
globals().update(alert_outbox_settings(env, beat_schedule=CELERY_BEAT_SCHEDULE))
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Data governance (issue 13): erasure requests and retention (governance app).
globals().update(
    governance_settings(env, secret_key=SECRET_KEY, beat_schedule=CELERY_BEAT_SCHEDULE)
)

# --- Events partitioned by received_at (issue 15, ADR 0021; PostgreSQL only).
globals().update(partition_settings(env, beat_schedule=CELERY_BEAT_SCHEDULE))

# ---- Operations under faults (issue 14; docs/adr/0008-operations-under-faults.md): timeouts
# (DB_ROLE web | worker), Redis and broker resilience, the beat leader lease, worker heartbeat.
globals().update(
    operations_settings(
        env,
        databases=DATABASES,
        caches=CACHES,
        redis_url=REDIS_URL,
        beat_schedule=CELERY_BEAT_SCHEDULE,
    )
)
# --- Reads off the primary (issue 15, ADR 0022): dashboards, exports and API reads on a
# streaming replica when DATABASE_REPLICA_URL is set (analytics_site.replica).
globals().update(replica_settings(env, databases=DATABASES))
# ...and a page whose database gave up (DB_CLIENT_TIMEOUT_SECONDS, or a dropped connection)
# answers 503 with Retry-After, not 500.
MIDDLEWARE += ["analytics_site.errors.DatabaseUnavailableMiddleware"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if IS_PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# ---- Security hardening (issue 14; docs/runbooks/security-settings.md): cookies, TLS/HSTS,
# trusted proxies, login throttling (axes), CSP, and EMAIL_BACKEND (dummy unless set, which
# gates password reset) with DEFAULT_FROM_EMAIL.
globals().update(security_settings(env, is_production=IS_PRODUCTION))

# ---- Ingestion fast path (analytics_site/fastpath/): event POSTs from API clients take a short
# middleware chain under WSGI. false: they take Django's handler and the full MIDDLEWARE.
INGEST_FASTPATH = env.bool("INGEST_FASTPATH", default=True)
# ---- end of the fast path's block

# Ingestion limits (all configurable). The body limit is enforced before parsing.
INGEST_MAX_BATCH_EVENTS = env.int("INGEST_MAX_BATCH_EVENTS", default=1000)
INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=1_048_576)
INGEST_MAX_EVENT_BYTES = env.int("INGEST_MAX_EVENT_BYTES", default=32_768)
INGEST_MAX_FUTURE_SKEW_SECONDS = env.int("INGEST_MAX_FUTURE_SKEW_SECONDS", default=300)
# The client IP is used to derive the country and then dropped, unless this keeps it on each
# event (events.client_ip; ADR 0014).
STORE_CLIENT_IP = env.bool("STORE_CLIENT_IP", default=False)
INGEST_REJECTED_PAYLOAD_MAX_BYTES = env.int("INGEST_REJECTED_PAYLOAD_MAX_BYTES", default=65_536)
INGEST_ALLOW_ANONYMOUS = env.bool("INGEST_ALLOW_ANONYMOUS", default=IS_DEVELOPMENT)
READ_ALLOW_ANONYMOUS = env.bool("READ_ALLOW_ANONYMOUS", default=IS_DEVELOPMENT)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(INGEST_MAX_BODY_BYTES, 2_621_440)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "events.authentication.IngestionKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "ingest": env.str("INGEST_THROTTLE_RATE", default="600000/min"),
        # public (browser) keys, per key and client IP (ADR 0018)
        "ingest_public": env.str("INGEST_PUBLIC_THROTTLE_RATE", default="600/min"),
        "read": env.str("READ_THROTTLE_RATE", default="6000/min"),
    },
    "EXCEPTION_HANDLER": "events.api_errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
INGEST_THROTTLE_ENABLED = env.bool("INGEST_THROTTLE_ENABLED", default=True)
# The event insert as a server-side prepared statement (PostgreSQL); off behind a
# transaction-pooling PgBouncer older than 1.21, which cannot keep prepared statements
# (DATABASE_POOL_MODE=transaction turns it off by default, ADR 0022).
INGEST_PREPARED_STATEMENTS = env.bool(
    "INGEST_PREPARED_STATEMENTS", default=DATABASE_POOL_MODE != "transaction"
)
# A translated batch's original messages stored once, as one row (ADR 0041; PostgreSQL). Off:
# each event keeps its own in events_event.original, as before.
INGEST_ORIGINALS_ONCE = env.bool("INGEST_ORIGINALS_ONCE", default=True)

SPECTACULAR_SETTINGS = {
    "TITLE": "E-commerce DataOps Analytics API",
    "DESCRIPTION": "Ingest shop events, validate them, and query them back.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The ingestion and read operations' real shapes, from the validator's constants (issue 14)
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "events.openapi.api_document_complete",
        "events.api_identity.identity_document_complete",
    ],
}

# Alerts (quality incidents): an optional webhook that receives JSON on open and resolve.
QUALITY_ALERT_WEBHOOK_URL = env.str("QUALITY_ALERT_WEBHOOK_URL", default="")
# --- Custom SQL checks (issue 12): each query's statement timeout, in its read-only transaction.
QUALITY_CUSTOM_SQL_TIMEOUT_MS = env.int("QUALITY_CUSTOM_SQL_TIMEOUT_MS", default=5_000)
# --- Alert channels (issue 12): the default for checks and rules without their own, as
# comma-separated specs: webhook:<url>, slack:<url>, email:<address>. Empty: the single
# QUALITY_ALERT_WEBHOOK_URL above. E-mail goes through Django's EMAIL_* settings.
QUALITY_ALERT_CHANNELS = env.list("QUALITY_ALERT_CHANNELS", default=[])
# Prefix that turns an incident's admin path into a link in Slack and e-mail alerts.
QUALITY_ALERT_LINK_BASE = env.str("QUALITY_ALERT_LINK_BASE", default="")
# EMAIL_BACKEND and DEFAULT_FROM_EMAIL: security block above (no mail until EMAIL_BACKEND is set).
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# How often each process checks the rule-set version (an admin edit applies within this).
# 0 in tests: every batch re-checks, so no test sees another test's rules.
QUALITY_RULES_CACHE_SECONDS = env.float(
    "QUALITY_RULES_CACHE_SECONDS", default=0.0 if ENVIRONMENT == "testing" else 1.0
)
# Per-rule counters are summed in each process and written at most this often (0: per batch).
QUALITY_COUNTERS_FLUSH_SECONDS = env.float(
    "QUALITY_COUNTERS_FLUSH_SECONDS", default=0.0 if ENVIRONMENT == "testing" else 2.0
)

# --- Roles, keys and /metrics (README "Roles and keys") -------------------------------------
# Groups Viewer, Analyst, Admin; Admin holds every permission through this backend.
# Axes first (login throttling, security block above), then roles.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "analytics_site.access.RoleBackend",
]
# /metrics in production: a bearer token, or a client address in one of these networks
# (CIDRs). Both empty: /metrics answers 403. Outside production it is open.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
METRICS_OPEN = env.bool("METRICS_OPEN", default=not IS_PRODUCTION)
# A key (and its revocation or expiry) is re-read from the database at most this often.
INGESTION_KEY_CACHE_SECONDS = env.float("INGESTION_KEY_CACHE_SECONDS", default=0.5)
# --- end roles, keys and /metrics -----------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "analytics_site.logging.json_formatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # lockouts and failures only, not every attempt
    },
}

from analytics_site.logging import configure_structlog  # noqa: E402

configure_structlog()
