"""A pytest-xdist worker's view of a setup the controller runs once (``--flowrun-xdist
once``): ``RemoteSetup`` asks the controller (``_once``) for the task results its tests
need, over the connection of ``_wire``.

The worker runs no task. At the end of its collection it tells the controller which
tasks its tests need (``check``: a task the controller does not know is a usage error);
a task fixture's value is then one request and one reply, the main thread waiting in
short slices so Ctrl-C gets through. A failed or skipped task fails or skips the test as
without xdist, with the controller's one line.

Imports the plugin's ``_interop`` and ``_wire``.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from pytest_flowrun._interop import task_failed
from pytest_flowrun._wire import WORKERINPUT_KEY, decode, encode

#: How long the main thread blocks at a time while waiting for the controller.
_POLL_S = 0.25


class RemoteSetup:
    """The connection of one worker to the controller that runs the setup."""

    def __init__(self, config: pytest.Config) -> None:
        workerinput: dict[str, Any] = getattr(config, "workerinput", {})
        address = workerinput.get(WORKERINPUT_KEY)
        if not isinstance(address, list) or len(address) != 3:
            raise pytest.UsageError(
                "flowrun: --flowrun-xdist once: this worker got no address from the "
                "controller; is the controller running pytest-flowrun with pytest-xdist's "
                "local workers (-n N)?"
            )
        self._address = (str(address[0]), int(address[1]))
        self._token = str(address[2])
        self._worker = str(workerinput.get("workerid", "?"))
        self._sock: socket.socket | None = None
        self._buffer = b""

    def check(self, selected: tuple[str, ...], origins: dict[str, str]) -> None:
        """Tell the controller the tasks this worker's tests need (``origins``: where each
        is declared); ``pytest.UsageError`` with the controller's message if it cannot
        serve them."""
        reply = self._ask({"op": "need", "tasks": list(selected), "origins": origins})
        if "error" in reply:
            raise pytest.UsageError(str(reply["error"]))

    def value_of(self, name: str) -> Any:
        """Task ``name``'s result from the controller: its value, or the test's skip or
        failure (one line, as without xdist)."""
        reply = self._ask({"op": "value", "task": name})
        if "value" in reply:
            return reply["value"]
        if "skipped" in reply:
            pytest.skip(str(reply["skipped"]))
        message = str(reply.get("failed", "flowrun: the controller sent no result"))
        raise task_failed(message, str(reply.get("task", name)))

    def close(self) -> None:
        """Close the connection (the controller sees the worker leave)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        sock = self._connect()
        try:
            sock.sendall(encode(message))
            while b"\n" not in self._buffer:
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue  # a slice: Ctrl-C gets through between them
                if not chunk:
                    raise ConnectionError("the controller closed the connection")
                self._buffer += chunk
        except OSError as exc:
            self.close()
            pytest.fail(
                f"flowrun: lost the controller that runs the setup (--flowrun-xdist once): {exc}",
                pytrace=False,
            )
        line, _, self._buffer = self._buffer.partition(b"\n")
        return decode(line)

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection(self._address, timeout=30)
            sock.settimeout(_POLL_S)
            sock.sendall(encode({"token": self._token, "worker": self._worker}))
            self._sock = sock
        return self._sock
