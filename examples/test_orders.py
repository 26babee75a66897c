"""Placing orders: pricing, payment, stock and the confirmation mail, across every service."""

from __future__ import annotations

from typing import Any

import pytest
from minikv import Client

from shop import db
from shop.http import JsonClient
from shop.payments import DECLINED_CARD
from shop.testing import Settings

CARD = "4242424242424242"


@pytest.fixture
def catalogue(seed_data: db.SeedSummary, api: JsonClient) -> dict[str, dict[str, Any]]:
    """The products by SKU, as the API lists them now."""
    return {product["sku"]: product for product in api.get("/products").body}


def test_order_is_charged_stored_and_confirmed(
    customer_api: JsonClient,
    payments: JsonClient,
    mailbox: JsonClient,
    catalogue: dict[str, dict[str, Any]],
) -> None:
    beans = catalogue["BEAN-ETH"]
    reply = customer_api.post(
        "/orders",
        {"user_id": 1, "card": CARD, "lines": [{"product_id": beans["id"], "quantity": 2}]},
    )

    assert reply.status == 201
    order = reply.body
    assert order["total_cents"] == 2 * 1450 + 495  # below free shipping

    charge = payments.get(f"/v1/charges/{order['charge_id']}").body
    assert charge["amount_cents"] == order["total_cents"]
    assert charge["card_last4"] == "4242"

    stored = customer_api.get(f"/orders/{order['id']}").body
    assert stored["lines"] == [{"product_id": beans["id"], "quantity": 2, "price_cents": 1450}]
    assert customer_api.get(f"/products/{beans['id']}").body["stock"] == beans["stock"] - 2

    (mail,) = mailbox.get("/messages?to=ada@example.com").body
    assert mail["subject"] == f"Your order #{order['id']}"
    assert "EUR 33.95" in mail["body"]


def test_discount_code_is_applied(
    customer_api: JsonClient, catalogue: dict[str, dict[str, Any]]
) -> None:
    dripper = catalogue["GEAR-V60"]
    reply = customer_api.post(
        "/orders",
        {
            "user_id": 2,
            "card": CARD,
            "discount_code": "BARISTA25",
            "lines": [{"product_id": dripper["id"], "quantity": 3}],
        },
    )
    assert reply.status == 201
    assert reply.body["total_cents"] == 7200 - 1800  # free shipping from 50.00


def test_declined_card_places_no_order(
    customer_api: JsonClient, mailbox: JsonClient, catalogue: dict[str, dict[str, Any]]
) -> None:
    beans = catalogue["BEAN-COL"]
    reply = customer_api.post(
        "/orders",
        {
            "user_id": 3,
            "card": DECLINED_CARD,
            "lines": [{"product_id": beans["id"], "quantity": 1}],
        },
    )
    assert reply.status == 402
    assert reply.body == {"error": "payment failed: card_declined"}
    assert customer_api.get(f"/products/{beans['id']}").body["stock"] == beans["stock"]
    assert mailbox.get("/messages").body == []


def test_out_of_stock_product_cannot_be_ordered(
    customer_api: JsonClient, payments: JsonClient, catalogue: dict[str, dict[str, Any]]
) -> None:
    charges_before = len(payments.get("/v1/charges").body)
    sumatra = catalogue["BEAN-SUM"]
    reply = customer_api.post(
        "/orders",
        {"user_id": 1, "card": CARD, "lines": [{"product_id": sumatra["id"], "quantity": 1}]},
    )
    assert reply.status == 409
    assert reply.body == {"error": "BEAN-SUM is out of stock"}
    assert len(payments.get("/v1/charges").body) == charges_before


def test_a_retried_order_is_placed_once(
    customer_api: JsonClient,
    payments: JsonClient,
    kv: Client,
    settings: Settings,
    catalogue: dict[str, dict[str, Any]],
) -> None:
    charges_before = len(payments.get("/v1/charges").body)
    grinder = catalogue["GEAR-GRD"]
    order = {"user_id": 2, "card": CARD, "lines": [{"product_id": grinder["id"], "quantity": 1}]}
    key = {"Idempotency-Key": "checkout-7f3a"}

    first = customer_api.post("/orders", order, headers=key)
    retried = customer_api.post("/orders", order, headers=key)  # the first reply was "lost"

    assert first.status == retried.status == 201
    assert retried.body == first.body
    assert len(payments.get("/v1/charges").body) == charges_before + 1
    assert customer_api.get(f"/products/{grinder['id']}").body["stock"] == grinder["stock"] - 1
    assert kv.get(f"idempotency:{settings.client_id}:checkout-7f3a") == first.body
