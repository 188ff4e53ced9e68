"""Request bodies of the ingestion benchmark: fresh events of a mix, in our format or a
protocol's, built fast because the load clients share the server's two cores.

Each template event is written to JSON once and split at its placeholders (`_ingest_shapes`);
a body is those pieces joined with each event's own id, time and order id.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Callable

import orjson

from benchmarks._ingest_mix import MIXES, OFFSETS, REALISTIC_CYCLE
from benchmarks._ingest_shapes import PAYLOAD_DATA, posthog_message, segment_message, snowplow_event

# Which endpoint takes a protocol's batches, and how one event is written for it.
PATHS = {
    "events": "/events/batch",
    "segment": "/v1/batch",
    "posthog": "/batch/",
    "snowplow": "/com.snowplowanalytics.snowplow/tp2",
}
SHAPES: dict[str, Callable[[dict], dict]] = {
    "events": lambda event: event,
    "segment": segment_message,
    "posthog": posthog_message,
    "snowplow": snowplow_event,
}
_HEADS = {
    "events": b'{"events":[',
    "segment": b'{"batch":[',
    "posthog": b'{"batch":[',
    "snowplow": b'{"schema":"' + PAYLOAD_DATA.encode() + b'","data":[',
}
_SLOT = re.compile(rb"@(ID|UU|TS|MS|OR)@")


class BodyMaker:
    """Bodies of fresh events (new ids; times of "now" less each template's offset)."""

    def __init__(self, seed: int, *, protocol: str = "events", mix: str = "light") -> None:
        self.protocol = protocol
        self.head = _HEADS[protocol]
        count = REALISTIC_CYCLE if mix == "realistic" else 64
        shape = SHAPES[protocol]
        # Per template: the literal pieces and slot names, alternating, and its time offset.
        self.templates: list[tuple[list[bytes], int]] = []
        for index in range(seed, seed + count):
            pieces = _SLOT.split(orjson.dumps(shape(MIXES[mix](index))))
            self.templates.append((pieces, OFFSETS[mix](index)))
        self.next = 0

    def _events(self, count: int) -> list[bytes]:
        ids = os.urandom(16 * count).hex()
        now = time.time()
        stamps: dict[tuple[bytes, int], bytes] = {}
        events = []
        for n in range(count):
            pieces, offset = self.templates[self.next % len(self.templates)]
            self.next += 1
            raw = ids[32 * n : 32 * n + 32]
            parts = [pieces[0]]
            for position in range(1, len(pieces), 2):
                slot = pieces[position]
                if slot == b"ID":
                    value = raw.encode()
                elif slot == b"UU":
                    value = f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-a{raw[17:20]}-{raw[20:]}".encode()
                elif slot == b"OR":
                    value = b"ord-" + raw[:16].encode()
                else:
                    value = stamps.get((slot, offset))
                    if value is None:
                        value = stamps[(slot, offset)] = _stamp(slot, now - offset)
                parts.append(value)
                parts.append(pieces[position + 1])
            events.append(b"".join(parts))
        return events

    def batch(self, size: int) -> bytes:
        """One body of `size` events (one random read for all their ids)."""
        return self.head + b",".join(self._events(size)) + b"]}"

    def single(self) -> bytes:
        """One single-event body (ours only)."""
        return self._events(1)[0]

    def singles(self, count: int) -> list[bytes]:
        """`count` single-event bodies (ours only) at once: a client builds its next requests
        in blocks, not one clock read and one random read per request."""
        return self._events(count)


def _stamp(slot: bytes, epoch_s: float) -> bytes:
    if slot == b"MS":
        return str(int(epoch_s * 1000)).encode()
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).isoformat().encode()
