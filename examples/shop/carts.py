"""Shopping carts, kept in the key-value store (minikv), for the shop's async code.

The storefront runs on an async stack: it keeps each customer's cart in minikv through one
``minikv.AsyncClient``, a counter per product (``cart:<user>:<product>`` holds the
quantity), so that concurrent requests adding to the same cart never lose an update.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from minikv import AsyncClient

from shop.pricing import Line, Quote

__all__ = ["Carts"]


class Carts:
    """The customers' carts, in minikv through ``kv``."""

    def __init__(self, kv: AsyncClient) -> None:
        self.kv = kv

    async def add(self, user_id: int, product_id: int, quantity: int = 1) -> int:
        """Add ``quantity`` of a product to a user's cart; the quantity now in the cart."""
        if quantity < 1:
            raise ValueError(f"quantity must be at least 1, got {quantity}")
        return await self.kv.incrby(f"cart:{user_id}:{product_id}", quantity)

    async def remove(self, user_id: int, product_id: int) -> bool:
        """Take a product out of a user's cart; whether it was there."""
        return await self.kv.delete(f"cart:{user_id}:{product_id}") == 1

    async def contents(self, user_id: int) -> dict[int, int]:
        """Quantity by product id in a user's cart."""
        keys = await self.kv.keys(f"cart:{user_id}:")
        quantities = await asyncio.gather(*map(self.kv.get, keys))
        return {
            int(key.rsplit(":", 1)[1]): quantity
            for key, quantity in zip(keys, quantities, strict=True)
            if quantity  # removed since listed
        }

    async def quote(
        self, user_id: int, prices: Mapping[int, int], discount_code: str | None = None
    ) -> Quote:
        """The price of a user's cart at ``prices`` (cents by product id); raises
        ``ValueError`` for an unknown discount code or a product without a price."""
        contents = await self.contents(user_id)
        missing = sorted(set(contents) - set(prices))
        if missing:
            raise ValueError(f"no price for products {missing}")
        lines = [Line(prices[product], quantity) for product, quantity in contents.items()]
        return Quote.for_lines(lines, discount_code)

    async def clear(self) -> int:
        """Empty every cart; how many cart lines there were."""
        keys = await self.kv.keys("cart:")
        return await self.kv.delete(*keys) if keys else 0
