"""A tiny WSGI app for the gunicorn worker tests: each answer names its thread and counts."""

import itertools
import threading

_served = itertools.count(1)


def application(environ, start_response):
    environ["wsgi.input"].read()
    body = f"{next(_served)} {threading.get_ident()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
