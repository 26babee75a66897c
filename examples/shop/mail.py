"""A mail sink: accepts outgoing mail over HTTP and keeps it for tests to read."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from shop.http import Request, Response

__all__ = ["MailSinkApp"]


class MailSinkApp:
    """``POST /messages`` sends, ``GET /messages[?to=...]`` reads, ``DELETE /messages`` empties."""

    def __init__(self) -> None:
        self._messages: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        """Route the ``/messages`` endpoints."""
        match request.method, request.parts:
            case "POST", ["messages"]:
                body = request.body if isinstance(request.body, dict) else {}
                if not body.get("to") or not body.get("subject"):
                    return 400, {"error": "'to' and 'subject' are required"}
                with self._lock:
                    message = {"id": next(self._ids), **body}
                    self._messages.append(message)
                return 202, {"id": message["id"]}
            case "GET", ["messages"]:
                recipient = request.query.get("to")
                with self._lock:
                    return 200, [m for m in self._messages if recipient in (None, m["to"])]
            case "DELETE", ["messages"]:
                with self._lock:
                    self._messages.clear()
                return 200, {"deleted": True}
            case _:
                return 404, {"error": f"no route for {request.method} {request.path}"}
