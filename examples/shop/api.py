"""The shop's JSON API: catalogue, search and orders, with a read-through product cache.

Reads go to SQLite; ``/orders`` needs a bearer token, which the API checks with the token
service, charges the payment gateway and mails a confirmation through the mail sink. An
order sent with an ``Idempotency-Key`` header is placed once: the reply is kept in the
key-value store (minikv) for a day, and a retry with the same key gets it back.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from minikv import Client

from shop import db
from shop.http import JsonClient, Request, Response
from shop.pricing import Line, Quote, format_cents
from shop.tokens import parse_bearer

__all__ = ["IDEMPOTENCY_TTL_S", "ProductCache", "ShopApp"]


class ProductCache:
    """A thread-safe read-through cache of products by id, counting hits and misses."""

    def __init__(self) -> None:
        self._items: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, product_id: int) -> dict[str, Any] | None:
        """The cached product, counting a hit or a miss."""
        with self._lock:
            item = self._items.get(product_id)
            if item is None:
                self.misses += 1
            else:
                self.hits += 1
            return item

    def put(self, product: dict[str, Any]) -> None:
        """Cache ``product`` under its id."""
        with self._lock:
            self._items[product["id"]] = product

    def evict(self, product_id: int) -> None:
        """Forget ``product_id`` (after its stock changed)."""
        with self._lock:
            self._items.pop(product_id, None)

    def stats(self) -> dict[str, int]:
        """Size, hits and misses."""
        with self._lock:
            return {"size": len(self._items), "hits": self.hits, "misses": self.misses}


class _HttpError(Exception):
    """Raised inside a route to answer with ``status`` and ``{"error": error}``."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(status, error)
        self.status = status
        self.error = error


#: How long the reply to an order sent with an ``Idempotency-Key`` is kept.
IDEMPOTENCY_TTL_S = 24 * 3600.0


class ShopApp:
    """The API app; ``tokens``, ``payments`` and ``mail`` are clients of those services,
    ``kv`` a client of the key-value store."""

    def __init__(
        self,
        db_path: Path,
        *,
        tokens: JsonClient,
        payments: JsonClient,
        mail: JsonClient,
        kv: Client,
    ) -> None:
        self.db_path = db_path
        self.tokens = tokens
        self.payments = payments
        self.mail = mail
        self.kv = kv
        self.cache = ProductCache()

    def handle(self, request: Request) -> Response:
        """Route the API's endpoints."""
        try:
            return self._route(request)
        except _HttpError as error:
            return error.status, {"error": error.error}

    def _route(self, request: Request) -> Response:
        match request.method, request.parts:
            case "GET", ["health"]:
                with db.connect(self.db_path) as conn:
                    return 200, {"status": "ok", "schema_version": db.schema_version(conn)}
            case "GET", ["products"]:
                with db.connect(self.db_path) as conn:
                    rows = conn.execute("SELECT * FROM products ORDER BY id").fetchall()
                return 200, [db.row_to_dict(row) for row in rows]
            case "GET", ["products", product_id]:
                return 200, self._product(_as_id(product_id))
            case "GET", ["search"]:
                return 200, self._search(request.query.get("q", ""))
            case "GET", ["cache"]:
                return 200, self.cache.stats()
            case "POST", ["orders"]:
                client_id = self._authorize(request)
                key = request.headers.get("idempotency-key")
                if key is None:
                    return 201, self._place_order(request.body)
                return 201, self._place_order_once(f"idempotency:{client_id}:{key}", request.body)
            case "GET", ["orders", order_id]:
                self._authorize(request)
                return 200, self._order(_as_id(order_id))
            case _:
                raise _HttpError(404, f"no route for {request.method} {request.path}")

    def _authorize(self, request: Request) -> str:
        token = parse_bearer(request.headers.get("authorization"))
        if token is None:
            raise _HttpError(401, "missing bearer token")
        reply = self.tokens.post("/oauth/introspect", {"token": token})
        if reply.status != 200 or not reply.body.get("active"):
            raise _HttpError(401, "invalid or expired token")
        client_id: str = reply.body["client_id"]
        return client_id

    def _product(self, product_id: int) -> dict[str, Any]:
        product = self.cache.get(product_id)
        if product is None:
            with db.connect(self.db_path) as conn:
                row = conn.execute("SELECT * FROM products WHERE id = ?", (product_id,)).fetchone()
            if row is None:
                raise _HttpError(404, f"no product {product_id}")
            product = db.row_to_dict(row)
            self.cache.put(product)
        return product

    def _search(self, query: str) -> list[dict[str, Any]]:
        words = query.split()
        if not words:
            raise _HttpError(400, "empty search query")
        # Quote each word so user input is never read as FTS syntax.
        match_expr = " ".join('"' + word.replace('"', '""') + '"' for word in words)
        try:
            with db.connect(self.db_path) as conn:
                rows = conn.execute(
                    "SELECT p.id, p.sku, p.name FROM product_search"
                    " JOIN products AS p ON p.id = product_search.rowid"
                    " WHERE product_search MATCH ? ORDER BY rank",
                    (match_expr,),
                ).fetchall()
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                raise _HttpError(503, "the search index is not built") from None
            raise
        return [db.row_to_dict(row) for row in rows]

    def _place_order(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("lines"):
            raise _HttpError(400, "an order needs 'user_id', 'card' and non-empty 'lines'")
        with db.connect(self.db_path) as conn:
            user = conn.execute("SELECT * FROM users WHERE id = ?", (body["user_id"],)).fetchone()
            if user is None:
                raise _HttpError(422, f"no user {body['user_id']}")
            lines: list[tuple[int, Line]] = []
            for entry in body["lines"]:
                product = conn.execute(
                    "SELECT * FROM products WHERE id = ?", (entry["product_id"],)
                ).fetchone()
                if product is None:
                    raise _HttpError(422, f"no product {entry['product_id']}")
                if product["stock"] < entry["quantity"]:
                    raise _HttpError(409, f"{product['sku']} is out of stock")
                lines.append((product["id"], Line(product["price_cents"], entry["quantity"])))
            try:
                quote = Quote.for_lines((line for _, line in lines), body.get("discount_code"))
            except ValueError as error:
                raise _HttpError(422, str(error)) from None

            charge = self.payments.post(
                "/v1/charges", {"amount_cents": quote.total_cents, "card": str(body.get("card"))}
            )
            if charge.status != 201:
                raise _HttpError(402, f"payment failed: {charge.body.get('error')}")

            order_id = conn.execute(
                "INSERT INTO orders (user_id, total_cents, charge_id) VALUES (?, ?, ?)",
                (user["id"], quote.total_cents, charge.body["id"]),
            ).lastrowid
            for product_id, line in lines:
                conn.execute(
                    "INSERT INTO order_lines (order_id, product_id, quantity, price_cents)"
                    " VALUES (?, ?, ?, ?)",
                    (order_id, product_id, line.quantity, line.price_cents),
                )
                conn.execute(
                    "UPDATE products SET stock = stock - ? WHERE id = ?",
                    (line.quantity, product_id),
                )
        for product_id, _ in lines:
            self.cache.evict(product_id)
        self.mail.post(
            "/messages",
            {
                "to": user["email"],
                "subject": f"Your order #{order_id}",
                "body": f"Thank you, {user['name']}! Total: {format_cents(quote.total_cents)}.",
            },
        )
        return {"id": order_id, "total_cents": quote.total_cents, "charge_id": charge.body["id"]}

    def _place_order_once(self, stored_as: str, body: Any) -> dict[str, Any]:
        """The order kept under ``stored_as``, or a new one, kept there.

        Made for retries after a lost reply; two requests with the same key at the same
        time could both place the order (a real store would reserve the key first).
        """
        kept: dict[str, Any] | None = self.kv.get(stored_as)
        if kept is None:
            kept = self._place_order(body)
            self.kv.set(stored_as, kept, ttl_s=IDEMPOTENCY_TTL_S)
        return kept

    def _order(self, order_id: int) -> dict[str, Any]:
        with db.connect(self.db_path) as conn:
            order = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
            if order is None:
                raise _HttpError(404, f"no order {order_id}")
            lines = conn.execute(
                "SELECT product_id, quantity, price_cents FROM order_lines WHERE order_id = ?",
                (order_id,),
            ).fetchall()
        return {**db.row_to_dict(order), "lines": [db.row_to_dict(line) for line in lines]}


def _as_id(text: str) -> int:
    if not text.isdigit():
        raise _HttpError(404, f"{text!r} is not an id")
    return int(text)
