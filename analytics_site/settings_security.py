"""Security hardening block of `analytics_site.settings` (issue 14), split out by issue 10.

docs/runbooks/security-settings.md describes each variable. Strict in production, relaxed only
where a developer needs it. `security_settings` reads the caller's django-environ `env` and
returns the settings to apply where the block stood. Imports no app (import-linter contract 5).
"""

from datetime import timedelta
from typing import Any

import environ

# Content-Security-Policy (django-csp): same-origin scripts, styles, images and connections
# only; no inline script or style (templates pass data with json_script, code lives in static/).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}


def security_settings(env: environ.Env, *, is_production: bool) -> dict[str, Any]:
    """Cookies, TLS and HSTS, trusted proxies, login throttling, CSP and the mail gate.

    TLS_ENABLED=true (clients reach the site over HTTPS, directly or through a TLS proxy) turns
    on the HTTPS redirect and HSTS; each can still be set on its own. HSTS preload is a
    commitment (a submission to the browsers' list), so it is opt-in; its deploy check warning
    (W021) is silenced only while it is deliberately off. X-Forwarded-Proto/-For are believed
    only from TRUSTED_PROXIES (analytics_site.proxy strips them from anyone else).
    """
    tls_enabled = env.bool("TLS_ENABLED", default=False)
    hsts_preload = env.bool("SECURE_HSTS_PRELOAD", default=False)
    # Password reset needs mail: its pages are served only when EMAIL_BACKEND is set to a
    # backend that really sends (analytics_site/urls.py); unset means the dummy backend, which
    # also keeps e-mail alert channels silent until mail is configured.
    email_backend = env.str("EMAIL_BACKEND", default="")
    return {
        "SESSION_COOKIE_SECURE": env.bool("SESSION_COOKIE_SECURE", default=is_production),
        "CSRF_COOKIE_SECURE": env.bool("CSRF_COOKIE_SECURE", default=is_production),
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "X_FRAME_OPTIONS": "DENY",
        "TLS_ENABLED": tls_enabled,
        "SECURE_SSL_REDIRECT": env.bool("SECURE_SSL_REDIRECT", default=tls_enabled),
        "SECURE_HSTS_SECONDS": env.int(
            "SECURE_HSTS_SECONDS", default=31_536_000 if tls_enabled else 0
        ),
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": env.bool(
            "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=tls_enabled
        ),
        "SECURE_HSTS_PRELOAD": hsts_preload,
        "SILENCED_SYSTEM_CHECKS": [] if hsts_preload else ["security.W021"],
        "TRUSTED_PROXIES": env.list("TRUSTED_PROXIES", default=[]),
        "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
        # Login throttling (django-axes) on both login pages (/accounts/login/ and the admin's):
        # after AXES_FAILURE_LIMIT wrong passwords from one client IP, every attempt from it,
        # right password included, is refused for AXES_COOLOFF_MINUTES, before any hashing.
        # AUTHENTICATION_BACKENDS (axes first, then roles) is set with the roles in settings.py.
        "AXES_ENABLED": env.bool("AXES_ENABLED", default=True),
        "AXES_FAILURE_LIMIT": env.int("AXES_FAILURE_LIMIT", default=5),
        "AXES_COOLOFF_TIME": timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15)),
        "AXES_LOCKOUT_PARAMETERS": ["ip_address"],
        "AXES_RESET_ON_SUCCESS": True,
        "AXES_LOCKOUT_TEMPLATE": "registration/locked_out.html",
        "AXES_VERBOSE": False,
        "CONTENT_SECURITY_POLICY": CONTENT_SECURITY_POLICY,
        "EMAIL_BACKEND": email_backend or "django.core.mail.backends.dummy.EmailBackend",
        "PASSWORD_RESET_ENABLED": bool(email_backend) and "dummy" not in email_backend,
        # The one sender address: password reset mail and e-mail alert channels (issue 12).
        "DEFAULT_FROM_EMAIL": env.str("DEFAULT_FROM_EMAIL", default="dataops-alerts@localhost"),
    }
