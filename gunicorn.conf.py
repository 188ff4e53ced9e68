"""gunicorn's settings file: every `gunicorn` started from the project folder reads it (the
Procfile, the Dockerfile, the README's commands), whatever its command-line options.

Metrics fit for Prometheus: each gunicorn worker is a process with its own counters, so a
scrape of /metrics used to answer with whichever worker took it, and counters seemed to go
back (resets to Prometheus). prometheus_client's multiprocess mode keeps every process's values
in files under PROMETHEUS_MULTIPROC_DIR, and django_prometheus's /metrics view then sums them
all (`MultiProcessCollector`). Counters of a worker that exits stay in the sum, so they never
decrease while the server runs.

- PROMETHEUS_MULTIPROC_DIR: set it to a directory of the web server's own (one per server; not
  shared with Celery or another gunicorn); unset, a fresh temporary directory is used and
  removed at exit. It must be set before a worker imports prometheus_client: here, at load,
  in the master, whose environment the workers inherit.
- The directory is emptied when the server starts (values of an earlier run would be summed
  in); a dead worker's live gauges are dropped (`child_exit`).
"""

import os
import shutil
import tempfile
from pathlib import Path

_CREATED = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _CREATED:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="analytics-prometheus-")
PROMETHEUS_DIR = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])

# prometheus_client picks its storage when imported: after the variable is set.
from prometheus_client import multiprocess  # noqa: E402


def on_starting(server) -> None:
    PROMETHEUS_DIR.mkdir(parents=True, exist_ok=True)
    for stale in PROMETHEUS_DIR.glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _CREATED:
        shutil.rmtree(PROMETHEUS_DIR, ignore_errors=True)
