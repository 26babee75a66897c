"""HTTP plumbing shared by the services: JSON request handling, serving, and a client.

A service is an *app*: an object with ``handle(request) -> (status, payload)``. ``serve``
runs an app on ``127.0.0.1`` at a port the OS picks, in a background thread, and stops it
(closing the socket and joining the threads) when the ``with`` block ends. ``JsonClient``
talks to a service from synchronous code, ``fetch_json`` from a coroutine.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "App",
    "JsonClient",
    "Reply",
    "Request",
    "Response",
    "Service",
    "fetch_json",
    "serve",
]

#: What an app returns: an HTTP status and a JSON-serialisable payload.
Response = tuple[int, Any]


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed HTTP request, as an app sees it."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None

    @property
    def parts(self) -> list[str]:
        """The path split into segments: ``/products/3`` is ``["products", "3"]``."""
        return [part for part in self.path.split("/") if part]


class App(Protocol):
    """A service's request handling, independent of HTTP."""

    def handle(self, request: Request) -> Response:
        """Answer ``request`` with a status and a JSON payload."""
        ...


class _Server(ThreadingHTTPServer):
    # Request threads are joined on close, so a stopped service leaves nothing running.
    daemon_threads = False

    def __init__(self, address: tuple[str, int], app: App) -> None:
        super().__init__(address, _JsonHandler)
        self.app = app


class _JsonHandler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean: no access log on stderr."""

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length)) if length else None
        except ValueError:
            self._send(400, {"error": "request body is not JSON"})
            return
        request = Request(
            method=method,
            path=url.path,
            query={key: values[-1] for key, values in parse_qs(url.query).items()},
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
        )
        try:
            status, payload = self.server.app.handle(request)
        except Exception as exc:  # a bug in an app is a 500, not a dead server
            status, payload = 500, {"error": f"{type(exc).__name__}: {exc}"}
        self._send(status, payload)

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Service:
    """An app served over HTTP from a background thread; see ``serve``."""

    def __init__(self, app: App, name: str, host: str = "127.0.0.1") -> None:
        self.app = app
        self.name = name
        self._server = _Server((host, 0), app)
        # A short poll interval makes ``stop`` prompt: shutdown() waits for the next poll.
        # A daemon thread: an interrupted session that never stops the service still exits.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{name}-server",
            daemon=True,
        )

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Start answering requests."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering, close the socket and join the server's threads."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __repr__(self) -> str:
        return f"<Service {self.name} at {self.url}>"


@contextmanager
def serve(app: App, name: str, host: str = "127.0.0.1") -> Iterator[Service]:
    """Serve ``app`` on ``host`` at an ephemeral port for the duration of the block."""
    service = Service(app, name, host)
    service.start()
    try:
        yield service
    finally:
        service.stop()


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP response: its status and decoded JSON body."""

    status: int
    body: Any


# Loopback traffic must never go through an HTTP proxy configured in the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True, slots=True)
class JsonClient:
    """A minimal JSON client for one service; sends ``token`` as a bearer token if set."""

    base_url: str
    token: str | None = None
    timeout_s: float = 5.0

    def get(self, path: str) -> Reply:
        """``GET base_url + path``."""
        return self.request("GET", path)

    def post(
        self, path: str, body: Any = None, *, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """``POST base_url + path`` with ``body`` as JSON, and ``headers`` if given."""
        return self.request("POST", path, body, headers=headers)

    def delete(self, path: str) -> Reply:
        """``DELETE base_url + path``."""
        return self.request("DELETE", path)

    def with_token(self, token: str | None) -> JsonClient:
        """The same client sending ``token`` instead."""
        return JsonClient(self.base_url, token, self.timeout_s)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send one request, with ``headers`` if given; HTTP error statuses are returned,
        not raised."""
        sent = {"Accept": "application/json", **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        if self.token is not None:
            sent["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=sent, method=method
        )
        try:
            with _opener.open(request, timeout=self.timeout_s) as response:
                return Reply(response.status, json.loads(response.read()))
        except urllib.error.HTTPError as error:
            with error:
                return Reply(error.code, json.loads(error.read() or b"null"))


async def fetch_json(url: str, *, token: str | None = None, timeout_s: float = 5.0) -> Reply:
    """``GET url`` on the running event loop (asyncio streams, no thread), for async code."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {path or '/'} HTTP/1.0", f"Host: {host}:{port}", "Accept: application/json"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            await writer.drain()
            raw = await reader.read()  # HTTP/1.0: the server closes when it is done
        finally:
            writer.close()
            await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return Reply(status, json.loads(body or b"null"))
