"""A TCP proxy the fault suite controls, run as a separate process in front of PostgreSQL or
Redis, so the stack under test sees a real network fault and not a patched client.

Modes (sent as one line to the control port, answered `ok`):
- `pass`: forward bytes both ways;
- `stall`: accept new connections and never answer them; bytes on open connections are held
  and delivered once the mode is `pass` again (a server that hangs, then recovers);
- `blackhole`: accept and read, forward nothing, ever (a network partition); the black-holed
  connections are reset when the mode goes back to `pass`, as TCP would after its retries;
- `cut`: reset every open connection now, keep the current mode for new ones.
Killing the process (ProxyProcess.kill) is "the server is down": connections refused.

    python -m tests.faults.tcp_proxy --listen 8392 --target 127.0.0.1:5432 --control 8393
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODES = ("pass", "stall", "blackhole")


class Proxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.changed = asyncio.Event()
        self.writers: set[asyncio.StreamWriter] = set()
        self.poisoned: set[asyncio.StreamWriter] = set()  # saw a black hole: reset on `pass`

    def set_mode(self, mode: str) -> None:
        if mode == "pass":
            for writer in list(self.poisoned):
                self._reset(writer)
            self.poisoned.clear()
        self.mode = mode
        self.changed.set()
        self.changed = asyncio.Event()

    def cut(self) -> None:
        for writer in list(self.writers):
            self._reset(writer)

    def _reset(self, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        with contextlib.suppress(OSError):
            # SO_LINGER 0: the peer gets a RST, as from a dead server, not a polite FIN.
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        writer.transport.abort()

    async def _wait_passable(self, writers: tuple) -> bool:
        """Wait while stalled; False when the connection is black-holed (drop the bytes)."""
        while self.mode == "stall":
            await self.changed.wait()
        if self.mode == "blackhole":
            self.poisoned.update(writers)
            return False
        return True

    async def _pipe(self, reader, writer, pair: tuple) -> None:
        try:
            while data := await reader.read(65536):
                if await self._wait_passable(pair):
                    writer.write(data)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            for w in pair:
                w.transport.abort()

    async def handle(self, client_reader, client_writer) -> None:
        self.writers.add(client_writer)
        try:
            while self.mode != "pass":  # stalled or black-holed before connecting upstream
                if self.mode == "blackhole":
                    self.poisoned.add(client_writer)
                    await client_reader.read(65536)
                    if client_reader.at_eof():
                        return
                else:
                    await self.changed.wait()
            if client_writer in self.poisoned or client_writer.transport.is_closing():
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                client_writer.transport.abort()
                return
            self.writers.add(up_writer)
            pair = (client_writer, up_writer)
            await asyncio.gather(
                self._pipe(client_reader, up_writer, pair),
                self._pipe(up_reader, client_writer, pair),
            )
            self.writers.discard(up_writer)
        finally:
            self.writers.discard(client_writer)
            client_writer.transport.abort()

    async def control(self, reader, writer) -> None:
        while line := (await reader.readline()).decode().strip():
            if line in MODES:
                self.set_mode(line)
            elif line == "cut":
                self.cut()
            elif line != "ping":
                writer.write(f"error unknown command {line}\n".encode())
                continue
            writer.write(b"ok\n")
            await writer.drain()
        writer.close()


async def serve(listen: int, target: str, control: int) -> None:
    host, port = target.rsplit(":", 1)
    proxy = Proxy(host, int(port))
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", listen, reuse_address=True)
    ctl = await asyncio.start_server(proxy.control, "127.0.0.1", control, reuse_address=True)
    async with server, ctl:
        await asyncio.gather(server.serve_forever(), ctl.serve_forever())


class ProxyProcess:
    """The proxy as a child process: start, send modes, kill (server down), start again."""

    def __init__(self, listen: int, target: str, control: int, log: Path) -> None:
        self.listen, self.target, self.control_port, self.log = listen, target, control, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.faults.tcp_proxy",
                "--listen",
                str(self.listen),
                "--target",
                self.target,
                "--control",
                str(self.control_port),
            ],
            cwd=ROOT,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                self.send("ping")
                return
            time.sleep(0.05)
        raise RuntimeError(f"proxy on {self.listen} did not start; see {self.log}")

    def send(self, command: str) -> None:
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=5) as sock:
            sock.sendall(f"{command}\n".encode())
            if not sock.makefile().readline().startswith("ok"):
                raise RuntimeError(f"proxy refused {command!r}")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", required=True, help="host:port")
    parser.add_argument("--control", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.listen, args.target, args.control))


if __name__ == "__main__":
    main()
