"""The real browser SDKs (posthog-js, Snowplow's browser tracker, Segment's analytics.js), pinned
in tests/browser/sdks/package-lock.json and installed by `npm ci` into its git-ignored
node_modules: by .ci/run, or here on first use (so `make test` works on a fresh machine).
Their code is never committed; the test shop serves their bundles under /sdk/."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SDKS_DIR = Path(__file__).resolve().parent / "sdks"
NODE_MODULES = SDKS_DIR / "node_modules"
LOCK = SDKS_DIR / "package-lock.json"
# What npm ci leaves behind: a copy of the lock it installed (stale when the pins change).
_INSTALLED_LOCK = NODE_MODULES / ".package-lock.json"
# The files the tests load (each SDK's own UMD/IIFE bundle), checked after installing.
BUNDLES = {
    "posthog-js": "posthog-js/dist/array.js",
    "snowplow": "@snowplow/browser-tracker/dist/index.umd.min.js",
    "segment": "@segment/analytics-next/dist/umd/standalone.js",
}


class SdkInstallError(RuntimeError):
    """npm is missing or `npm ci` failed: the SDK tests cannot run."""


def _installed() -> bool:
    if not _INSTALLED_LOCK.is_file():
        return False
    if _INSTALLED_LOCK.stat().st_mtime < LOCK.stat().st_mtime:
        return False  # the pins changed since the last install
    return all((NODE_MODULES / bundle).is_file() for bundle in BUNDLES.values())


def sdks_install() -> Path:
    """node_modules with every pinned SDK, installed by `npm ci` when missing or stale.
    Raises SdkInstallError with npm's own words when that cannot be done."""
    if _installed():
        return NODE_MODULES
    npm = shutil.which("npm")
    if npm is None:
        raise SdkInstallError("needs npm (node 20) for the browser SDKs: apt-get install npm")
    # --ignore-scripts: nothing of a package runs on this machine; only its files are served.
    command = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
    env = {**os.environ, "npm_config_update_notifier": "false"}
    try:
        done = subprocess.run(
            command, cwd=SDKS_DIR, env=env, capture_output=True, text=True, timeout=600
        )
    except subprocess.TimeoutExpired as exc:
        raise SdkInstallError(f"npm ci took over 10 minutes in {SDKS_DIR}") from exc
    if done.returncode != 0 or not _installed():
        said = (done.stderr or done.stdout)[-2000:]
        raise SdkInstallError(f"npm ci failed in {SDKS_DIR}:\n{said}")
    return NODE_MODULES
