"""The wire between the pytest-xdist controller that runs the setup once (``_once``) and
its workers (``_remote``): one loopback TCP connection per worker, one JSON object per
line each way, a token in the first line.

xdist has no channel for messages of a plugin's own after a worker starts (an unknown
worker event crashes the node), so the controller serves one, from its loop thread; its
address and token reach each worker in ``workerinput`` (``WORKERINPUT_KEY``). Only plain
data crosses: ``crosses_unchanged`` is the check a task's result must pass.

Imports only the standard library.
"""

from __future__ import annotations

import json
from typing import Any

#: The ``workerinput`` key holding ``[host, port, token]``.
WORKERINPUT_KEY = "flowrun_once"


def encode(message: dict[str, Any]) -> bytes:
    """``message`` as one line of JSON."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """The object of one line; ``ValueError`` if it is not a JSON object."""
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("flowrun: expected a JSON object")
    return message


def crosses_unchanged(value: object) -> bool:
    """Does ``value`` survive a JSON round trip unchanged (types included)?

    A tuple comes back a list, a dict's int keys strings, a set not at all: each would
    reach the tests as something other than the task returned.
    """
    try:
        back = json.loads(json.dumps(value))
    except (TypeError, ValueError, RecursionError):
        return False
    return _same(value, back)


def _same(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    return a == b or (a != a and b != b)  # NaN is not equal to itself
