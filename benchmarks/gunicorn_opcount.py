"""A gunicorn config file that counts the bytecodes a worker's threads execute per request.

    touch /tmp/opcount_on   # counting starts at the next request a thread takes
    gunicorn analytics_site.wsgi -c benchmarks/gunicorn_opcount.py --workers 1 --threads 2 \\
        --worker-class analytics_site.gunicorn_workers.KeepAliveThreadWorker ...
    # send N requests (after a warm-up with the file absent), remove the file, stop gunicorn
    echo N > /tmp/opcount_n

When the worker exits it writes the counts per request, by function (benchmarks/opcount.py),
to /tmp/opcount_gunicorn_<pid>.txt. Tracing makes the worker ~30x slower.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.opcount import OpCounter

SWITCH = Path("/tmp/opcount_on")
_counter = OpCounter()


def post_worker_init(worker) -> None:
    def tracer(frame, event, arg):
        if not SWITCH.exists():
            return None
        return _counter.trace(frame, event, arg)

    threading.settrace(tracer)  # the pool's threads start after this


def worker_exit(server, worker) -> None:
    requests = int(Path("/tmp/opcount_n").read_text())
    with open(f"/tmp/opcount_gunicorn_{os.getpid()}.txt", "w") as out:
        _counter.report(requests, top=150, out=out)
