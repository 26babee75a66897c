"""Setup of the live part: tasks that hand async tests a live connection.

``pytest.ini`` sets ``flowrun_loop = asyncio-session``: async tasks run on pytest-asyncio's
session loop instead of flowrun's own, so the ``minikv.AsyncClient`` that ``kv`` opens (its
streams and its lock belong to the loop that opened it) is used as it is by the tests
marked ``@pytest.mark.asyncio(loop_scope="session")``, and by the ``carts`` fixture::

    minikv_proc ── kv ── carts (a pytest-asyncio fixture, for each test)
    prices

``minikv_proc`` (minikv's plugin fixture, promoted by ``pytest.ini``) and ``prices`` start
together in flowrun's threads while pytest-asyncio's loop, driven by flowrun between
tests, opens the connection as soon as the server is up. At the end ``kv`` closes it on
the still open loop, then the server stops, then pytest-asyncio closes the loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from flowrun import task
from minikv import AsyncClient

from shop import db
from shop.carts import Carts
from shop.testing import Settings

if TYPE_CHECKING:  # imported by pytest_plugins below, which must import it first
    from minikv.pytest_plugin import MinikvProc

pytest_plugins = ["minikv.pytest_plugin"]


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The stack's ``shop.testing.Settings`` (``SHOP_LATENCY_SCALE``)."""
    return Settings.from_env()


@task(timeout_s=10)
@pytest.fixture(scope="session")
def prices(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[int, int]:
    """Price in cents by product id, from a freshly created, migrated and seeded database.

    A sync task: it runs in flowrun's thread pool, at the same time as ``minikv_proc``.
    """
    path = tmp_path_factory.mktemp("database") / "shop.sqlite3"
    settings.wait(0.8)  # starting the database container
    db.create(path)
    db.migrate(path)
    db.seed(path)
    with db.connect(path) as conn:
        rows = conn.execute("SELECT id, price_cents FROM products").fetchall()
    return {row["id"]: row["price_cents"] for row in rows}


@task(deps=["minikv_proc"], timeout_s=10)
async def kv(minikv_proc: MinikvProc) -> AsyncIterator[AsyncClient]:
    """One connection to minikv, opened on pytest-asyncio's session loop and shared, live,
    by the session-loop tests; closed at the end of the session, on that loop."""
    client = await AsyncClient.connect(minikv_proc.host, minikv_proc.port)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def carts(kv: AsyncClient) -> AsyncIterator[Carts]:
    """The shop's carts on the shared connection, emptied after each test."""
    carts = Carts(kv)
    yield carts
    await carts.clear()
