"""One POST through a WSGI application in this process, as gunicorn would hand it over: the
in-process benchmarks (ingest_inprocess.py, protocol_opcount.py) measure the application
without a server or a socket."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from typing import Any


def wsgi_post(
    application: Callable[..., Any],
    path: str,
    body: bytes,
    start_response: Callable[..., Any],
    headers: dict[str, str] | None = None,
) -> None:
    """POST `body` as JSON to `path`; `headers` (WSGI keys, e.g. HTTP_USER_AGENT, REMOTE_ADDR)
    add to or override the defaults. The response body is read and closed."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "CONTENT_TYPE": "application/json",
        "HTTP_ACCEPT": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
        **(headers or {}),
    }
    result = application(environ, start_response)
    try:
        b"".join(result)
    finally:
        result.close()
