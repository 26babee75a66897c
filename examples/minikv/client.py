"""minikv's clients: ``Client`` for synchronous code, ``AsyncClient`` for coroutines.

Both keep one connection open and send one command at a time on it, so callers sharing a
client take turns (a ``threading.Lock``, an ``asyncio.Lock``). An ``AsyncClient`` belongs
to the event loop that opened it: its streams and its lock work on that loop only.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

__all__ = ["AsyncClient", "Client", "MinikvError"]


class MinikvError(Exception):
    """Raised when the server refuses a command, or the connection closes mid-reply."""


def _encode(command: tuple[Any, ...]) -> bytes:
    return json.dumps(list(command)).encode() + b"\n"


def _decode(line: bytes) -> Any:
    if not line:
        raise MinikvError("the server closed the connection")
    reply = json.loads(line)
    if "error" in reply:
        raise MinikvError(reply["error"])
    return reply["ok"]


class Client:
    """A thread-safe client on one connection to a minikv server."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 5.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout_s)
        self._file = self._sock.makefile("rwb")
        self._lock = threading.Lock()

    def execute(self, *command: Any) -> Any:
        """Send one command and return its result; raises ``MinikvError`` for an error."""
        with self._lock:
            self._file.write(_encode(command))
            self._file.flush()
            return _decode(self._file.readline())

    def ping(self) -> bool:
        """Whether the server answers."""
        return bool(self.execute("PING") == "PONG")

    def get(self, key: str) -> Any:
        """The value of ``key``, or None."""
        return self.execute("GET", key)

    def set(self, key: str, value: Any, *, ttl_s: float | None = None) -> None:
        """Store ``value`` (any JSON value) under ``key``, for ``ttl_s`` seconds if given."""
        self.execute("SET", key, value, *([] if ttl_s is None else [ttl_s]))

    def delete(self, *keys: str) -> int:
        """Remove ``keys``; how many existed."""
        count: int = self.execute("DEL", *keys)
        return count

    def incrby(self, key: str, amount: int = 1) -> int:
        """Add ``amount`` to the integer under ``key`` (0 if missing); the new value."""
        value: int = self.execute("INCRBY", key, amount)
        return value

    def keys(self, prefix: str = "") -> list[str]:
        """The keys starting with ``prefix``, sorted."""
        found: list[str] = self.execute("KEYS", prefix)
        return found

    def close(self) -> None:
        """Close the connection."""
        self._file.close()
        self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClient:
    """A client on one connection, for coroutines on the event loop that opened it.

    Open it with ``await AsyncClient.connect(host, port)`` and close it with ``aclose``.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls, host: str, port: int) -> AsyncClient:
        """Open a connection on the running loop."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def execute(self, *command: Any) -> Any:
        """Send one command and return its result; raises ``MinikvError`` for an error."""
        async with self._lock:
            self._writer.write(_encode(command))
            await self._writer.drain()
            return _decode(await self._reader.readline())

    async def ping(self) -> bool:
        """Whether the server answers."""
        return bool(await self.execute("PING") == "PONG")

    async def get(self, key: str) -> Any:
        """The value of ``key``, or None."""
        return await self.execute("GET", key)

    async def set(self, key: str, value: Any, *, ttl_s: float | None = None) -> None:
        """Store ``value`` (any JSON value) under ``key``, for ``ttl_s`` seconds if given."""
        await self.execute("SET", key, value, *([] if ttl_s is None else [ttl_s]))

    async def delete(self, *keys: str) -> int:
        """Remove ``keys``; how many existed."""
        count: int = await self.execute("DEL", *keys)
        return count

    async def incrby(self, key: str, amount: int = 1) -> int:
        """Add ``amount`` to the integer under ``key`` (0 if missing); the new value."""
        value: int = await self.execute("INCRBY", key, amount)
        return value

    async def keys(self, prefix: str = "") -> list[str]:
        """The keys starting with ``prefix``, sorted."""
        found: list[str] = await self.execute("KEYS", prefix)
        return found

    async def aclose(self) -> None:
        """Close the connection."""
        self._writer.close()
        await self._writer.wait_closed()
