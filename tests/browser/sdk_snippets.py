"""The browser SDKs' own snippets, as their docs give them, configured only with our host and
a public key (the README shows the same), plus the shop's calls made with each SDK
(tests/browser/shop/sdk-*.js). One change from the docs: the SDK's bundle comes from the test
shop's /sdk/ (the installed npm package), not from the vendor's CDN."""

from __future__ import annotations

import json
from pathlib import Path

SNIPPETS = Path(__file__).resolve().parent / "snippets"


def _snippet(name: str, **values: str) -> str:
    """snippets/<name>.html with each {{NAME}} replaced by a JavaScript string literal."""
    text = (SNIPPETS / f"{name}.html").read_text()
    for placeholder, value in values.items():
        text = text.replace("{{" + placeholder + "}}", json.dumps(value))
    return text


def _spec_v2_calls(sdk: str, track: str) -> str:
    """The shop's glue for an SDK that takes Segment's e-commerce spec v2 names: how it tracks
    and identifies (window.shopSdk, read by shop/sdk-spec-v2.js)."""
    return (
        "<script>window.shopSdk = {"
        f"track: function (name, props) {{ return window.{sdk}.{track}(name, props); }}, "
        f"identify: function (userId, traits) {{ return window.{sdk}.identify(userId, traits); }}"
        '};</script>\n<script src="sdk-spec-v2.js"></script>'
    )


def posthog_snippet(host: str, key: str) -> str:
    """PostHog's snippet (posthog.com/docs/libraries/js) with only the host and key set."""
    snippet = _snippet("posthog", SDK_SRC="/sdk/posthog-js/dist/array.js", KEY=key, HOST=host)
    return snippet + _spec_v2_calls("posthog", "capture")


def snowplow_snippet(host: str, key: str) -> str:
    """Snowplow's browser tracker (docs.snowplow.io, browser tracker): the collector is our
    host, the app id our key; the e-commerce plugin for the shop's product and order events."""
    return _snippet("snowplow", KEY=key, HOST=host)


def segment_snippet(host: str, key: str) -> str:
    """Segment's analytics.js snippet (5.2.0) set up for self-hosting as its docs say: the
    script from one's own host, `analytics._cdn` our host (its settings come from us, and name
    us as its API host); the write key is our public key."""
    src = "/sdk/@segment/analytics-next/dist/umd/standalone.js"
    return _snippet("segment", SDK_SRC=src, KEY=key, HOST=host) + _spec_v2_calls(
        "analytics", "track"
    )
