"""Ingestion through the namespace cluster's HAProxy with two web hosts against one (issue 15
§4, ADR 0023), measured in the same run: two hosts, web2 lost (HAProxy drops it), two hosts
again after it is back. Single events and batches of 10 as the soak sends them, no pauses.

    scale/cluster.sh up && .venv/bin/python benchmarks/cluster_ingest.py --seconds 30

Every host, the clients and the database share this machine's cores: the ratio says what the
second web host buys here, not on separate machines.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scale.soak import cluster, cluster_env  # noqa: E402
from tests.faults.driver import Driver  # noqa: E402


def phase(host: str, port: int, seconds: float, clients: int) -> tuple[float, float, float]:
    """(events/s, requests/s, p99 ms) acknowledged through the load balancer."""
    with Driver(port, threads=clients, pause=0.0, host=host) as driver:
        time.sleep(seconds)
    record = driver.record
    return (
        len(record.acked) / seconds,
        sum(record.statuses.values()) / seconds,
        record.p99_ms(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=6)
    args = parser.parse_args()
    host, port = cluster_env()["CLUSTER_LB"].split(":")
    rows = [("two web hosts", *phase(host, int(port), args.seconds, args.clients))]
    cluster("kill", "web2")
    time.sleep(3)  # HAProxy's checks mark it down (fall 2, inter 1s)
    rows.append(("one web host", *phase(host, int(port), args.seconds, args.clients)))
    cluster("start", "web2")
    time.sleep(15)  # gunicorn boots, then rise 2
    rows.append(("two web hosts again", *phase(host, int(port), args.seconds, args.clients)))
    print(f"{'phase':<22}{'events/s':>10}{'requests/s':>12}{'p99 ms':>9}")
    for name, events, requests, p99 in rows:
        print(f"{name:<22}{events:>10.0f}{requests:>12.0f}{p99:>9.0f}")
    two = (rows[0][1] + rows[2][1]) / 2
    print(f"two hosts / one host: {two / rows[1][1]:.2f}x ({args.clients} clients, same run)")


if __name__ == "__main__":
    main()
