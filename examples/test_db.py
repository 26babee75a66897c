"""The migrated, seeded database, queried directly with sqlite3."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from shop import db


def test_every_migration_is_applied(database: Path, migrations: int) -> None:
    with db.connect(database) as conn:
        assert db.schema_version(conn) == migrations == db.MIGRATIONS[-1].version
        tables = {row["name"] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"users", "products", "orders", "order_lines"} <= tables


def test_migrating_again_applies_nothing(database: Path, migrations: int) -> None:
    assert db.migrate(database) == []


def test_reference_data_is_seeded(database: Path, seed_data: db.SeedSummary) -> None:
    assert seed_data == db.SeedSummary(users=len(db.SEED_USERS), products=len(db.SEED_PRODUCTS))
    with db.connect(database) as conn:
        emails = [row["email"] for row in conn.execute("SELECT email FROM users ORDER BY id")]
    assert emails == [email for email, _ in db.SEED_USERS]


def test_foreign_keys_are_enforced(database: Path, seed_data: db.SeedSummary) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"), db.connect(database) as conn:
        conn.execute("INSERT INTO orders (user_id, total_cents, charge_id) VALUES (999, 1, 'x')")


def test_prices_cannot_be_negative(database: Path, seed_data: db.SeedSummary) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"), db.connect(database) as conn:
        conn.execute("UPDATE products SET price_cents = -1 WHERE id = 1")


def test_search_index_covers_the_catalogue(search_index: int, seed_data: db.SeedSummary) -> None:
    assert search_index == seed_data.products
