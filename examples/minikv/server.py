"""minikv's server: JSON values in memory, served over TCP one JSON line at a time.

Run as a script (it imports nothing but the standard library)::

    python server.py --port 0 --dir DATADIR [--host 127.0.0.1] [--load-delay SECONDS]

It loads ``DATADIR/dump.json`` if there is one (``--load-delay`` stands in for the time a
real server spends loading a large snapshot), listens, writes ``ready <port>`` on stdout,
and serves until SIGTERM or SIGINT, or until its standard input closes: a parent that
dies without stopping it closes that pipe, so the server never outlives the process that
started it. On the way out it writes its data back to ``DATADIR/dump.json``.

Commands, each a JSON array: ``["PING"]``, ``["GET", key]``, ``["SET", key, value]``,
``["SET", key, value, ttl_s]``, ``["DEL", key, ...]`` (how many existed),
``["INCRBY", key, n]`` (the new integer), ``["KEYS", prefix]`` (sorted) and ``["FLUSH"]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["Store", "main"]


class Store:
    """The data: JSON values by key, each with an optional expiry (monotonic time)."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self._data: dict[str, tuple[Any, float | None]] = {
            key: (value, None) for key, value in (data or {}).items()
        }

    def execute(self, command: Any) -> Any:
        """Run one command; raises ``ValueError`` for a malformed or unknown one."""
        match command:
            case ["PING"]:
                return "PONG"
            case ["GET", str(key)]:
                return self._get(key)
            case ["SET", str(key), value]:
                self._data[key] = (value, None)
                return True
            case ["SET", str(key), value, int() | float() as ttl_s] if ttl_s > 0:
                self._data[key] = (value, time.monotonic() + ttl_s)
                return True
            case ["DEL", *keys] if all(isinstance(key, str) for key in keys):
                return sum(self._data.pop(key, None) is not None for key in keys)
            case ["INCRBY", str(key), int(amount)]:
                current = self._get(key)
                if current is None:
                    current = 0
                elif not isinstance(current, int):
                    raise ValueError(f"the value of {key!r} is not an integer")
                self._data[key] = (current + amount, None)
                return current + amount
            case ["KEYS", str(prefix)]:
                return sorted(
                    key for key in list(self._data) if key.startswith(prefix) and self._alive(key)
                )
            case ["FLUSH"]:
                self._data.clear()
                return True
            case _:
                raise ValueError(f"unknown or malformed command: {json.dumps(command)}")

    def dump(self) -> dict[str, Any]:
        """The values that do not expire (a snapshot keeps no short-lived data)."""
        return {key: value for key, (value, expires) in self._data.items() if expires is None}

    def _get(self, key: str) -> Any:
        return self._data[key][0] if self._alive(key) else None

    def _alive(self, key: str) -> bool:
        entry = self._data.get(key)
        if entry is None:
            return False
        if entry[1] is not None and entry[1] <= time.monotonic():
            del self._data[key]
            return False
        return True


async def _serve(store: Store, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # Standard input reaches its end when the parent closes the pipe or dies.
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    watch = asyncio.create_task(stdin.read())
    watch.add_done_callback(lambda _: stop.set())

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    reply = {"ok": store.execute(json.loads(line))}
                except ValueError as error:
                    reply = {"error": str(error)}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(session, host, port)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, load the snapshot, serve until stopped, write the snapshot."""
    parser = argparse.ArgumentParser(prog="minikv-server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a port the OS picks")
    parser.add_argument("--dir", type=Path, required=True, help="where dump.json lives")
    parser.add_argument("--load-delay", type=float, default=0.0, metavar="SECONDS")
    args = parser.parse_args(argv)
    # Stopped while still loading: leave quietly, as once serving.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: sys.exit(0))
    snapshot = args.dir / "dump.json"
    data = json.loads(snapshot.read_text()) if snapshot.exists() else {}
    time.sleep(args.load_delay)
    store = Store(data)
    asyncio.run(_serve(store, args.host, args.port))
    snapshot.write_text(json.dumps(store.dump()))


if __name__ == "__main__":
    main()
