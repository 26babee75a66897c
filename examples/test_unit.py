"""Unit tests: pure functions of the shop, no services (``pytest examples -k unit`` starts none)."""

from __future__ import annotations

import pytest

from shop.db import MIGRATIONS
from shop.http import Request
from shop.pricing import FREE_SHIPPING_FROM_CENTS, SHIPPING_CENTS, Line, Quote, format_cents
from shop.testing import LATENCY_VARIABLE, Settings
from shop.tokens import parse_bearer


def test_quote_adds_shipping_below_the_free_shipping_threshold() -> None:
    quote = Quote.for_lines([Line(price_cents=1450, quantity=2)])
    assert quote.goods_cents == 2900
    assert quote.shipping_cents == SHIPPING_CENTS
    assert quote.total_cents == 2900 + SHIPPING_CENTS


def test_quote_ships_free_from_the_threshold() -> None:
    quote = Quote.for_lines([Line(price_cents=FREE_SHIPPING_FROM_CENTS, quantity=1)])
    assert quote.shipping_cents == 0
    assert quote.total_cents == FREE_SHIPPING_FROM_CENTS


def test_discount_applies_to_goods_and_can_cost_free_shipping() -> None:
    quote = Quote.for_lines([Line(price_cents=5400, quantity=1)], discount_code="welcome10")
    assert quote.discount_cents == 540
    assert quote.shipping_cents == SHIPPING_CENTS  # 48.60 after the discount is below 50.00
    assert quote.total_cents == 5400 - 540 + SHIPPING_CENTS


def test_unknown_discount_code_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown discount code 'FREE100'"):
        Quote.for_lines([Line(price_cents=100, quantity=1)], discount_code="FREE100")


@pytest.mark.parametrize(("price", "quantity"), [(100, 0), (-1, 1)])
def test_line_rejects_impossible_values(price: int, quantity: int) -> None:
    with pytest.raises(ValueError, match="must"):
        Line(price_cents=price, quantity=quantity)


@pytest.mark.parametrize(
    ("cents", "text"),
    [(0, "EUR 0.00"), (1450, "EUR 14.50"), (123456, "EUR 1,234.56"), (-495, "-EUR 4.95")],
)
def test_format_cents(cents: int, text: str) -> None:
    assert format_cents(cents) == text


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc123", "abc123"),
        ("bearer  abc123 ", "abc123"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", None),
        ("Bearer two tokens", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_bearer(header: str | None, token: str | None) -> None:
    assert parse_bearer(header) == token


def test_migrations_are_numbered_one_by_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_request_parts_ignore_empty_segments() -> None:
    assert Request("GET", "/products/3/").parts == ["products", "3"]
    assert Request("GET", "/").parts == []


def test_latency_scale_comes_from_the_environment() -> None:
    assert Settings.from_env({}).latency_scale == 1.0
    assert Settings.from_env({LATENCY_VARIABLE: "0"}).latency_scale == 0.0
    assert Settings.from_env({LATENCY_VARIABLE: "2.5"}).latency_scale == 2.5


@pytest.mark.parametrize("raw", ["fast", "-1", "inf", "nan"])
def test_latency_scale_rejects_nonsense(raw: str) -> None:
    with pytest.raises(ValueError, match=f"SHOP_LATENCY_SCALE must be a number >= 0.*{raw!r}"):
        Settings.from_env({LATENCY_VARIABLE: raw})
