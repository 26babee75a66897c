"""The shop's SQLite database: schema migrations, seed data and the queries the API runs."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MIGRATIONS",
    "SEED_PRODUCTS",
    "SEED_USERS",
    "Migration",
    "SeedSummary",
    "build_search_index",
    "connect",
    "create",
    "migrate",
    "row_to_dict",
    "schema_version",
    "seed",
]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change: its version number, a description and its SQL statements."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "create users",
        (
            """CREATE TABLE users (
                id INTEGER PRIMARY KEY,
                email TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "create products",
        (
            """CREATE TABLE products (
                id INTEGER PRIMARY KEY,
                sku TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                description TEXT NOT NULL,
                price_cents INTEGER NOT NULL CHECK (price_cents >= 0)
            )""",
        ),
    ),
    Migration(
        3,
        "create orders",
        (
            """CREATE TABLE orders (
                id INTEGER PRIMARY KEY,
                user_id INTEGER NOT NULL REFERENCES users (id),
                total_cents INTEGER NOT NULL,
                charge_id TEXT NOT NULL
            )""",
            """CREATE TABLE order_lines (
                order_id INTEGER NOT NULL REFERENCES orders (id),
                product_id INTEGER NOT NULL REFERENCES products (id),
                quantity INTEGER NOT NULL CHECK (quantity > 0),
                price_cents INTEGER NOT NULL,
                PRIMARY KEY (order_id, product_id)
            )""",
        ),
    ),
    Migration(
        4,
        "track stock, index orders by user",
        (
            "ALTER TABLE products ADD COLUMN stock INTEGER NOT NULL DEFAULT 0",
            "CREATE INDEX orders_by_user ON orders (user_id)",
        ),
    ),
)

SEED_USERS: tuple[tuple[str, str], ...] = (
    ("ada@example.com", "Ada Lovelace"),
    ("grace@example.com", "Grace Hopper"),
    ("alan@example.com", "Alan Turing"),
)

#: (sku, name, description, price in cents, stock)
SEED_PRODUCTS: tuple[tuple[str, str, str, int, int], ...] = (
    ("BEAN-ETH", "Ethiopia Yirgacheffe", "Washed beans, bright and floral", 1450, 40),
    ("BEAN-COL", "Colombia Huila", "Caramel sweetness with a round body", 1290, 25),
    ("BEAN-SUM", "Sumatra Mandheling", "Earthy, heavy body, low acidity", 1350, 0),
    ("GEAR-V60", "Pour-over dripper", "Ceramic cone dripper for one cup", 2400, 12),
    ("GEAR-GRD", "Hand grinder", "Conical burr grinder with steel burrs", 8900, 5),
    ("GEAR-KTL", "Gooseneck kettle", "Precise pour kettle, one litre", 4900, 8),
)


@dataclass(frozen=True, slots=True)
class SeedSummary:
    """What ``seed`` inserted."""

    users: int
    products: int


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to the database at ``path``, in one transaction, closed afterwards.

    The block commits when it ends normally and rolls back when it raises.
    """
    conn = sqlite3.connect(path, timeout=5.0)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        with conn:
            yield conn
    finally:
        conn.close()


def create(path: Path) -> None:
    """Create an empty database at ``path`` in WAL mode, so readers never block the writer."""
    with connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")


def schema_version(conn: sqlite3.Connection) -> int:
    """The version of the last migration applied (0 for a fresh database)."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(
    path: Path, migrations: Sequence[Migration] = MIGRATIONS, *, step_latency_s: float = 0.0
) -> list[int]:
    """Apply the pending ``migrations`` in order, each in its own transaction.

    ``step_latency_s`` is how long each step takes on a real server (the examples pass a
    few hundred milliseconds). Returns the versions applied.
    """
    applied: list[int] = []
    for migration in migrations:
        with connect(path) as conn:
            if migration.version <= schema_version(conn):
                continue
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {migration.version:d}")
        time.sleep(step_latency_s)
        applied.append(migration.version)
    return applied


def seed(path: Path) -> SeedSummary:
    """Insert the reference users and products."""
    with connect(path) as conn:
        conn.executemany("INSERT INTO users (email, name) VALUES (?, ?)", SEED_USERS)
        conn.executemany(
            "INSERT INTO products (sku, name, description, price_cents, stock)"
            " VALUES (?, ?, ?, ?, ?)",
            SEED_PRODUCTS,
        )
    return SeedSummary(users=len(SEED_USERS), products=len(SEED_PRODUCTS))


def build_search_index(path: Path) -> int:
    """(Re)build the full-text index over product names and descriptions; returns its size."""
    with connect(path) as conn:
        conn.execute("DROP TABLE IF EXISTS product_search")
        conn.execute(
            "CREATE VIRTUAL TABLE product_search USING fts5("
            "name, description, content='products', content_rowid='id')"
        )
        conn.execute("INSERT INTO product_search (product_search) VALUES ('rebuild')")
        size: int = conn.execute("SELECT count(*) FROM product_search").fetchone()[0]
    return size


def row_to_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A row as a plain dict, ready for JSON."""
    return {key: row[key] for key in row.keys()}  # noqa: SIM118 - sqlite3.Row is not a Mapping
