"""minikv: a minimal key-value server, its clients and its pytest plugin.

It stands in, in the example suite, for a third-party package such as Redis with
pytest-redis: the suite uses it as it is and never edits it. Nothing in it knows about
flowrun or the shop.

* ``minikv.server``: the server, an asyncio TCP server holding JSON values in memory,
  run as a child process (``python server.py --port 0``);
* ``minikv.Client`` for synchronous code (thread-safe, one connection) and
  ``minikv.AsyncClient`` for coroutines (one connection, bound to the event loop that
  opened it, like ``redis.asyncio``);
* ``minikv.pytest_plugin``: the ``minikv_proc`` session fixture, which starts a server for
  the test session and stops it afterwards, like pytest-redis's ``redis_proc``.

The protocol is one JSON array per line (``["SET", "k", {"a": 1}]``), answered by one JSON
object per line: ``{"ok": value}`` or ``{"error": message}``.
"""

from __future__ import annotations

from minikv.client import AsyncClient, Client, MinikvError

__all__ = ["AsyncClient", "Client", "MinikvError"]
