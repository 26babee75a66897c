"""Carts from async code: every test shares the one live connection a setup task opened."""

from __future__ import annotations

import asyncio

import pytest
from minikv import AsyncClient

from shop.carts import Carts

pytestmark = pytest.mark.asyncio(loop_scope="session")

DRIPPER, GRINDER = 4, 5


async def test_the_shared_connection_works_on_this_loop(kv: AsyncClient) -> None:
    assert await kv.ping()


async def test_a_cart_keeps_what_is_added(carts: Carts) -> None:
    assert await carts.add(user_id=1, product_id=DRIPPER) == 1
    assert await carts.add(user_id=1, product_id=DRIPPER, quantity=2) == 3
    assert await carts.add(user_id=1, product_id=GRINDER) == 1
    assert await carts.contents(1) == {DRIPPER: 3, GRINDER: 1}


async def test_carts_are_per_customer(carts: Carts) -> None:
    await carts.add(user_id=1, product_id=DRIPPER)
    await carts.add(user_id=2, product_id=GRINDER)
    assert await carts.contents(1) == {DRIPPER: 1}
    assert await carts.contents(2) == {GRINDER: 1}
    assert await carts.contents(3) == {}


async def test_concurrent_adds_lose_nothing(carts: Carts) -> None:
    await asyncio.gather(*(carts.add(user_id=2, product_id=GRINDER) for _ in range(50)))
    assert await carts.contents(2) == {GRINDER: 50}


async def test_a_removed_product_leaves_the_cart(carts: Carts) -> None:
    await carts.add(user_id=1, product_id=DRIPPER)
    assert await carts.remove(user_id=1, product_id=DRIPPER)
    assert not await carts.remove(user_id=1, product_id=DRIPPER)
    assert await carts.contents(1) == {}


async def test_a_quote_prices_the_cart(carts: Carts, prices: dict[int, int]) -> None:
    await carts.add(user_id=1, product_id=DRIPPER, quantity=3)  # 3 x 24.00
    quote = await carts.quote(1, prices, discount_code="BARISTA25")
    assert quote.total_cents == 7200 - 1800  # free shipping from 50.00


async def test_a_cart_with_an_unknown_product_cannot_be_quoted(
    carts: Carts, prices: dict[int, int]
) -> None:
    await carts.add(user_id=1, product_id=999)
    with pytest.raises(ValueError, match=r"no price for products \[999\]"):
        await carts.quote(1, prices)
