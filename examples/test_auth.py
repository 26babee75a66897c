"""Authentication: the token service, and the API refusing callers without a valid token."""

from __future__ import annotations

from shop.http import JsonClient
from shop.testing import Settings


def test_token_service_issues_tokens_for_known_clients(
    tokens: JsonClient, settings: Settings
) -> None:
    reply = tokens.post(
        "/oauth/token", {"client_id": settings.client_id, "client_secret": settings.client_secret}
    )
    assert reply.status == 200
    assert reply.body["token_type"] == "Bearer"
    assert reply.body["expires_in"] > 0


def test_token_service_refuses_a_wrong_secret(tokens: JsonClient, settings: Settings) -> None:
    reply = tokens.post("/oauth/token", {"client_id": settings.client_id, "client_secret": "guess"})
    assert reply.status == 401
    assert reply.body == {"error": "invalid_client"}


def test_suite_token_is_active(tokens: JsonClient, auth_token: str, settings: Settings) -> None:
    reply = tokens.post("/oauth/introspect", {"token": auth_token})
    assert reply.body == {"active": True, "client_id": settings.client_id, "scope": "orders"}


def test_unknown_token_is_inactive(tokens: JsonClient) -> None:
    assert tokens.post("/oauth/introspect", {"token": "forged"}).body == {"active": False}


def test_api_requires_a_token_for_orders(api: JsonClient) -> None:
    reply = api.get("/orders/1")
    assert reply.status == 401
    assert reply.body == {"error": "missing bearer token"}


def test_api_accepts_the_suite_token(customer_api: JsonClient) -> None:
    reply = customer_api.get("/orders/999999")
    assert reply.status == 404  # authenticated; there is just no such order
    assert reply.body == {"error": "no order 999999"}


def test_api_refuses_a_forged_token(api: JsonClient) -> None:
    reply = api.with_token("forged").get("/orders/1")
    assert reply.status == 401
    assert reply.body == {"error": "invalid or expired token"}
