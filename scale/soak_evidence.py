"""What a failed soak shows about its stray 503s (scale/soak.py, ADR 0023): each one's time
against the strikes, and what the cluster's logs say around it."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path

Unavailable = tuple[float, float, str, str]  # a 503: sent, answered (monotonic), path, origin


def stray_503_times(
    strays: list[tuple[str, Unavailable]], struck: dict[str, float], start: float
) -> list[str]:
    """Each stray 503 for the reader of a failed soak: ingest or read, its path, when it was
    sent and answered (s after the start, and the wall clock to match the cluster's logs), who
    answered it, and how long after (+) or before (-) each strike it was answered."""
    wall = time.time() - time.monotonic()
    lines = []
    for kind, (sent, answered, path, origin) in strays:
        clock = time.strftime("%H:%M:%S", time.gmtime(answered + wall))
        strikes = ", ".join(f"{name} {answered - at:+.1f}" for name, at in struck.items())
        lines.append(
            f"{kind} {path}: sent {sent - start:.1f} s, answered {answered - start:.1f} s "
            f"({clock}.{int((answered + wall) % 1 * 1000):03d} UTC), {origin[:90]}; {strikes}"
        )
    return lines


# Lines of the database hosts' logs worth showing near a stray 503: the keepers' state changes
# and complaints, PgBouncer starting or stopping, the bouncer loop's decisions (cluster.sh).
_DATABASE_LINE = re.compile(
    r" (WARN|ERROR|FATAL|WARNING) |assigned|Transition|New state|listening on 0|SIG|shutdown|"
    r"bouncer-follow"
)


def stray_503_evidence(
    log_dir: Path, answered: list[float], margin: float = 3.0, limit: int = 15
) -> list[str]:
    """What the cluster's logs in `log_dir` say within `margin` s of the stray 503s, in time
    order and at most `limit` lines of each kind: the web hosts' warnings and errors (why the
    app answered 503: the database error it met), HAProxy's abnormal requests and health
    check changes, and the database hosts' keeper transitions and PgBouncer starts and
    stops. Read before `cluster.sh down` removes the logs."""
    wall = time.time() - time.monotonic()
    moments = [t + wall for t in answered]
    found: dict[str, list[tuple[float, str]]] = {"web": [], "haproxy": [], "database": []}
    for path in sorted(log_dir.glob("*.log")):
        source = _log_source(path.name)
        if source is None:
            continue
        for line in path.read_text(errors="replace").splitlines():
            at = _log_time(line, moments[0])
            if at is None or not any(abs(at - moment) <= margin for moment in moments):
                continue
            if source == "web" and '"level": "info"' in line:
                continue
            if source == "database" and not _DATABASE_LINE.search(line):
                continue
            found[source].append((at, f"{path.stem}: {_log_brief(line)}"))
    return [line for lines in found.values() for _, line in sorted(lines)[:limit]]


def _log_source(name: str) -> str | None:
    if name.startswith("web"):
        return "web"
    if name == "haproxy.log":
        return "haproxy"
    if name.startswith(("pg1", "pg2", "mon")) and "create" not in name:
        return "database"
    return None  # the worker hosts, Redis, the nodes' creation


def _log_brief(line: str) -> str:
    """A web host's JSON line as `time event: error` (the error's first line), else the line."""
    if not line.startswith("{"):
        return line[:240]
    record = json.loads(line)
    error = str(record.get("error", "")).splitlines()[0] if record.get("error") else ""
    return f"{record.get('timestamp', '')[11:23]} {record.get('event', '')}: {error}"[:240]


def _log_time(line: str, near: float) -> float | None:
    """The time (UTC) of a log line of the cluster: a web host's JSON line, HAProxy's and the
    bouncer loop's ISO prefix, PgBouncer's `2026-12-06 20:43:33.314 UTC`, or pg_autoctl's bare
    `20:43:31` (taken on the UTC day of `near`)."""
    if line.startswith("{"):
        try:
            stamp = json.loads(line).get("timestamp", "")
        except ValueError:
            return None
    elif re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC", line):
        stamp = line[:23]
    elif re.match(r"\d{4}-\d\d-\d\dT", line):
        stamp = line.split(" ", 1)[0]
    elif re.match(r"\d\d:\d\d:\d\d ", line):
        stamp = dt.datetime.fromtimestamp(near, dt.UTC).strftime("%Y-%m-%dT") + line[:8]
    else:
        return None
    try:
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()
