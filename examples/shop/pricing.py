"""Pure pricing rules: order totals, discount codes and money formatting (no IO)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "DISCOUNT_CODES",
    "FREE_SHIPPING_FROM_CENTS",
    "SHIPPING_CENTS",
    "Line",
    "Quote",
    "format_cents",
]

SHIPPING_CENTS = 495
FREE_SHIPPING_FROM_CENTS = 5000

#: Discount code -> percentage off the goods (never off shipping).
DISCOUNT_CODES: dict[str, int] = {"WELCOME10": 10, "BARISTA25": 25}


@dataclass(frozen=True, slots=True)
class Line:
    """One order line: a product's price and the quantity ordered."""

    price_cents: int
    quantity: int

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise ValueError(f"quantity must be at least 1, got {self.quantity}")
        if self.price_cents < 0:
            raise ValueError(f"price must not be negative, got {self.price_cents}")

    @property
    def subtotal_cents(self) -> int:
        """Price times quantity."""
        return self.price_cents * self.quantity


@dataclass(frozen=True, slots=True)
class Quote:
    """The price of an order, broken down."""

    goods_cents: int
    discount_cents: int
    shipping_cents: int

    @property
    def total_cents(self) -> int:
        """What the customer pays."""
        return self.goods_cents - self.discount_cents + self.shipping_cents

    @classmethod
    def for_lines(cls, lines: Iterable[Line], discount_code: str | None = None) -> Quote:
        """Price ``lines``; raises ``ValueError`` for an unknown discount code.

        Shipping is free from ``FREE_SHIPPING_FROM_CENTS`` of goods after the discount.
        """
        goods = sum(line.subtotal_cents for line in lines)
        percent = 0
        if discount_code is not None:
            try:
                percent = DISCOUNT_CODES[discount_code.upper()]
            except KeyError:
                raise ValueError(f"unknown discount code {discount_code!r}") from None
        discount = goods * percent // 100
        shipping = 0 if goods - discount >= FREE_SHIPPING_FROM_CENTS else SHIPPING_CENTS
        return cls(goods_cents=goods, discount_cents=discount, shipping_cents=shipping)


def format_cents(cents: int, currency: str = "EUR") -> str:
    """``1450`` -> ``'EUR 14.50'``."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{currency} {whole:,}.{rest:02d}"
