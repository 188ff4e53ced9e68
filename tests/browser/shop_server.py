"""The test shop: static pages (tests/browser/shop/) served from their own origin, another port
than the analytics live server, so that the tracker's requests are real cross-origin ones.
`{{TRACKER}}` in a page becomes the copy-paste snippet of the README, pointed at the server."""

from __future__ import annotations

import contextlib
import functools
import html
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SHOP_DIR = Path(__file__).resolve().parent / "shop"
# The browser SDKs' installed files (tests/browser/browser_sdks.py), served under /sdk/.
SDK_DIR = Path(__file__).resolve().parent / "sdks" / "node_modules"
# Ports for servers the tests start (SHOP_PORTS=first-last); the first free one is used.
SHOP_PORTS = os.environ.get("SHOP_PORTS", "20550-20599")


def tracker_snippet(host: str, key: str, script_host: str = "", **options: str) -> str:
    """The README's snippet: one deferred script tag with data- attributes."""
    attributes = {"key": key, "host": host, **options}
    script_host = script_host or host
    data = " ".join(
        f'data-{name.replace("_", "-")}="{html.escape(value)}"'
        for name, value in attributes.items()
    )
    src = f"{html.escape(script_host)}/static/trackers/tracker.js"
    return f'<script defer src="{src}" {data}></script>'


@dataclass
class Shop:
    """The running shop; `snippet` (the tracker tag its pages get) may change between pages."""

    origin: str
    snippet: str = ""

    def url(self, page: str) -> str:
        return f"{self.origin}/{page}"


class _ShopHandler(SimpleHTTPRequestHandler):
    def __init__(self, *args, shop: Shop, **kwargs) -> None:
        self.shop = shop
        super().__init__(*args, directory=str(SHOP_DIR), **kwargs)

    def do_GET(self) -> None:
        name = self.path.split("?", 1)[0].lstrip("/") or "index.html"
        if name.startswith("sdk/"):
            self._sdk_file(name.removeprefix("sdk/"))
            return
        if not name.endswith(".html"):
            super().do_GET()
            return
        page = SHOP_DIR / Path(name).name
        if not page.is_file():
            self.send_error(404)
            return
        body = page.read_text().replace("{{TRACKER}}", self.shop.snippet).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _sdk_file(self, name: str) -> None:
        """A file of an installed SDK package (its bundle), never anything outside them."""
        path = (SDK_DIR / name).resolve()
        if not path.is_relative_to(SDK_DIR.resolve()) or not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/javascript; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # quiet
        pass


def free_port(*, after: int = 0) -> int:
    """The first free port of SHOP_PORTS above `after` (the tests' own servers and proxies)."""
    first, _, last = SHOP_PORTS.partition("-")
    for port in range(max(int(first), after + 1), int(last or first) + 1):
        with contextlib.closing(socket.socket()) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {SHOP_PORTS}")


@contextlib.contextmanager
def shop_serving() -> Iterator[Shop]:
    port = free_port()
    shop = Shop(origin=f"http://127.0.0.1:{port}")
    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_ShopHandler, shop=shop))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield shop
    finally:
        server.shutdown()
        server.server_close()
