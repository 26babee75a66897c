"""The shop API's read side: health, catalogue, search and the product cache."""

from __future__ import annotations

from shop import db
from shop.http import JsonClient


def test_health_reports_the_schema_version(api: JsonClient, migrations: int) -> None:
    reply = api.get("/health")
    assert reply.status == 200
    assert reply.body == {"status": "ok", "schema_version": migrations}


def test_catalogue_lists_the_seeded_products(api: JsonClient, seed_data: db.SeedSummary) -> None:
    reply = api.get("/products")
    assert reply.status == 200
    assert [p["sku"] for p in reply.body] == [sku for sku, *_ in db.SEED_PRODUCTS]


def test_product_by_id(api: JsonClient, seed_data: db.SeedSummary) -> None:
    reply = api.get("/products/2")
    assert reply.status == 200
    assert reply.body["name"] == "Colombia Huila"
    assert reply.body["price_cents"] == 1290


def test_missing_product_is_404(api: JsonClient, seed_data: db.SeedSummary) -> None:
    assert api.get("/products/999").status == 404
    assert api.get("/products/abc").status == 404


def test_unknown_route_is_404(api: JsonClient) -> None:
    reply = api.get("/nope")
    assert reply.status == 404
    assert reply.body == {"error": "no route for GET /nope"}


def test_search_finds_products_by_description(api: JsonClient, search_index: int) -> None:
    reply = api.get("/search?q=burr")
    assert reply.status == 200
    assert [p["sku"] for p in reply.body] == ["GEAR-GRD"]


def test_search_treats_input_as_words_not_syntax(api: JsonClient, search_index: int) -> None:
    reply = api.get('/search?q=body"%20OR')
    assert reply.status == 200
    assert reply.body == []


def test_warm_cache_serves_products_from_memory(
    api: JsonClient, warm_cache: int, seed_data: db.SeedSummary
) -> None:
    assert warm_cache == seed_data.products
    before = api.get("/cache").body
    assert api.get("/products/6").status == 200  # the kettle: no test orders it
    after = api.get("/cache").body
    assert after["hits"] == before["hits"] + 1
    assert after["misses"] == before["misses"]
