"""The token service: issues bearer tokens for client credentials and introspects them.

A cut-down OAuth2 client-credentials server: ``POST /oauth/token`` with ``client_id`` and
``client_secret`` returns an ``access_token``; ``POST /oauth/introspect`` with a ``token``
says whether it is active and whose it is.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from shop.http import Request, Response

__all__ = ["Grant", "TokenApp", "parse_bearer"]


@dataclass(frozen=True, slots=True)
class Grant:
    """What an issued token stands for."""

    client_id: str
    scope: str
    expires_at: float


class TokenApp:
    """Issues and checks tokens for the registered ``clients`` (client id -> secret)."""

    def __init__(self, clients: Mapping[str, str], *, lifetime_s: float = 3600.0) -> None:
        self._clients = dict(clients)
        self._lifetime_s = lifetime_s
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def issue(self, client_id: str, client_secret: str, scope: str = "orders") -> str | None:
        """A new token, or None if the credentials are wrong."""
        expected = self._clients.get(client_id)
        if expected is None or not secrets.compare_digest(expected, client_secret):
            return None
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[token] = Grant(client_id, scope, time.time() + self._lifetime_s)
        return token

    def introspect(self, token: str) -> Grant | None:
        """The grant behind ``token``, or None if it is unknown or expired."""
        with self._lock:
            grant = self._grants.get(token)
        if grant is None or grant.expires_at < time.time():
            return None
        return grant

    def handle(self, request: Request) -> Response:
        """Route ``/oauth/token`` and ``/oauth/introspect``."""
        body = request.body if isinstance(request.body, dict) else {}
        match request.method, request.parts:
            case "POST", ["oauth", "token"]:
                token = self.issue(
                    str(body.get("client_id", "")),
                    str(body.get("client_secret", "")),
                    str(body.get("scope", "orders")),
                )
                if token is None:
                    return 401, {"error": "invalid_client"}
                return 200, {
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": int(self._lifetime_s),
                }
            case "POST", ["oauth", "introspect"]:
                grant = self.introspect(str(body.get("token", "")))
                if grant is None:
                    return 200, {"active": False}
                return 200, {"active": True, "client_id": grant.client_id, "scope": grant.scope}
            case _:
                return 404, {"error": f"no route for {request.method} {request.path}"}


def parse_bearer(authorization: str | None) -> str | None:
    """The token in an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token
