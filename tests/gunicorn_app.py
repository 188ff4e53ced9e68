"""A tiny WSGI app for the gunicorn worker tests: each answer names its thread and counts;
/scheme answers the request's URL scheme (which gunicorn takes from X-Forwarded-Proto when the
peer is a trusted proxy)."""

import itertools
import threading

_served = itertools.count(1)


def application(environ, start_response):
    environ["wsgi.input"].read()
    if environ["PATH_INFO"] == "/scheme":
        body = environ["wsgi.url_scheme"].encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    body = f"{next(_served)} {threading.get_ident()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
