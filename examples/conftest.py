"""Session setup of the example suite: a whole shop stack on loopback, declared as a DAG.

Every service binds ``127.0.0.1`` at a port the OS picks, and every step waits as long as
its real counterpart would (starting a container, running a migration), scaled by the
``SHOP_LATENCY_SCALE`` environment variable (default 1; 0 turns the waiting off)::

    database ── migrations ──┬── seed_data ──┬── search_index
                             │               │
    token_service ───────────┼── api_server ─┴── warm_cache
      └── auth_token         │
    payment_gateway ─────────┤
    mail_server ─────────────┤
    minikv_proc ─────────────┘

``minikv_proc`` is not declared here: it is the fixture of minikv's pytest plugin (a
stand-in for a third-party plugin such as pytest-redis), loaded through ``pytest_plugins``
below, and the one line ``flowrun_fixtures = minikv_proc`` in ``pytest.ini`` makes it a
setup task without any change to its code.

With the flowrun plugin (``pytest -p flowrun``), the steps a selected test needs run
concurrently as soon as their parents are done; without it (``pytest -p no:flowrun``) the
task fixtures, and ``minikv_proc``, are ordinary session fixtures that pytest sets up one
after the other, and the two plain setup steps (``search_index``, ``warm_cache``) do not
exist, so the tests that use them are skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flowrun import RunContext, default_registry, task
from minikv import Client

from shop import db
from shop.api import ShopApp
from shop.http import JsonClient, Reply, Service, fetch_json, serve
from shop.mail import MailSinkApp
from shop.payments import PaymentGatewayApp
from shop.testing import Settings
from shop.tokens import TokenApp

if TYPE_CHECKING:  # imported by pytest_plugins below, which must import it first
    from minikv.pytest_plugin import MinikvProc

#: Where a third-party plugin is usually installed, this suite loads minikv's explicitly.
pytest_plugins = ["minikv.pytest_plugin"]

#: ``live/`` is a suite of its own, with its own ``pytest.ini`` (its event loop mode holds
#: for a whole session): ``pytest examples/live`` runs it.
collect_ignore = ["live"]

settings_key = pytest.StashKey[Settings]()


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """Under ``-p no:flowrun``, declare the plugin's ``flowrun_fixtures`` ini key, so that
    ``--strict-config`` accepts ``pytest.ini`` and the suite runs with plain pytest too."""
    if not pluginmanager.has_plugin("flowrun"):
        parser.addini("flowrun_fixtures", "ignored: the flowrun plugin is not loaded", "args")


def pytest_configure(config: pytest.Config) -> None:
    """Read the stack's settings once, failing the run early on a bad value."""
    try:
        config.stash[settings_key] = Settings.from_env()
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


@pytest.hookimpl(optionalhook=True)  # the hook exists only while the flowrun plugin is loaded
def pytest_flowrun_context(config: pytest.Config) -> RunContext[Settings]:
    """The ``RunContext`` that plain setup steps receive: the stack's settings."""
    return RunContext(config.stash[settings_key])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``-p no:flowrun``, skip the tests that need a plain setup step.

    Plain ``@task`` functions (the tasks in flowrun's default registry) are fixtures only
    while the plugin is active; without it, pytest would report them as missing fixtures.
    """
    if config.pluginmanager.has_plugin("flowrun"):
        return
    steps = set(default_registry.names())
    skip = pytest.mark.skip(reason="needs a flowrun setup step; run with -p flowrun")
    for item in items:
        if steps.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def settings(pytestconfig: pytest.Config) -> Settings:
    """The stack's ``shop.testing.Settings``; an ordinary session fixture, not a task."""
    return pytestconfig.stash[settings_key]


# --- The database: created, migrated, seeded, indexed ---------------------------------------


@task(timeout_s=10)
@pytest.fixture(scope="session")
def database(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Path of a fresh, empty SQLite database, dropped at the end of the session.

    Stands in for starting a database container and waiting until it accepts connections.
    """
    path = tmp_path_factory.mktemp("database") / "shop.sqlite3"
    settings.wait(0.8)
    db.create(path)
    yield path
    settings.wait(0.3)  # stopping the container
    for leftover in path.parent.glob(f"{path.name}*"):  # the WAL and shared-memory files too
        leftover.unlink()


@task(timeout_s=10)
@pytest.fixture(scope="session")
def migrations(database: Path, settings: Settings) -> int:
    """Schema version of ``database`` after every migration in ``shop.db.MIGRATIONS`` ran."""
    applied = db.migrate(database, step_latency_s=0.15 * settings.latency_scale)
    return applied[-1]


@task(timeout_s=10)
@pytest.fixture(scope="session")
def seed_data(database: Path, migrations: int, settings: Settings) -> db.SeedSummary:
    """How many reference users and products were inserted into the migrated database."""
    settings.wait(0.4)
    return db.seed(database)


@task(deps=[database, seed_data], timeout_s=10)
def search_index(upstream: Mapping[str, Any], context: RunContext[Settings]) -> int:
    """Number of products in the full-text search index built over the seeded catalogue.

    A plain setup step: a fixture only under the flowrun plugin.
    """
    context.deps.wait(0.4)
    size: int = db.build_search_index(upstream["database"])
    return size


# --- The services around the API -------------------------------------------------------------


@task(timeout_s=10)
@pytest.fixture(scope="session")
def token_service(settings: Settings) -> Iterator[Service]:
    """The token service, knowing the suite's client credentials; stopped after the session."""
    app = TokenApp({settings.client_id: settings.client_secret})
    with serve(app, "token-service") as service:
        settings.wait(0.8)
        yield service


@task(timeout_s=10)
@pytest.fixture(scope="session")
def auth_token(token_service: Service, settings: Settings) -> str:
    """A bearer token issued by the token service for the suite's client."""
    settings.wait(0.3)
    reply = settings.client(token_service).post(
        "/oauth/token",
        {"client_id": settings.client_id, "client_secret": settings.client_secret},
    )
    if reply.status != 200:
        raise RuntimeError(f"the token service refused the suite's client: {reply}")
    token: str = reply.body["access_token"]
    return token


@task(timeout_s=10)
@pytest.fixture(scope="session")
def payment_gateway(settings: Settings) -> Iterator[Service]:
    """The payment gateway stub, recording every charge; stopped after the session."""
    with serve(PaymentGatewayApp(), "payment-gateway") as service:
        settings.wait(0.8)
        yield service


@task(timeout_s=10)
@pytest.fixture(scope="session")
def mail_server(settings: Settings) -> Iterator[Service]:
    """The mail sink, keeping every message sent; stopped after the session."""
    with serve(MailSinkApp(), "mail-server") as service:
        settings.wait(0.6)
        yield service


# --- The API -----------------------------------------------------------------------------------


@task(timeout_s=10)
@pytest.fixture(scope="session")
def api_server(
    database: Path,
    migrations: int,
    token_service: Service,
    payment_gateway: Service,
    mail_server: Service,
    minikv_proc: MinikvProc,
    settings: Settings,
) -> Iterator[Service]:
    """The shop API on the migrated database, wired to the other services.

    It does not wait for ``seed_data``: tests that need the catalogue ask for both.
    """
    with Client(minikv_proc.host, minikv_proc.port) as kv:
        app = ShopApp(
            database,
            tokens=settings.client(token_service),
            payments=settings.client(payment_gateway),
            mail=settings.client(mail_server),
            kv=kv,
        )
        with serve(app, "shop-api") as service:
            settings.wait(0.5)
            yield service


@task(deps=[api_server, seed_data], timeout_s=5)
async def warm_cache(
    api_server: Service, seed_data: db.SeedSummary, context: RunContext[Settings]
) -> int:
    """Number of products loaded into the API's cache by fetching each of them concurrently.

    A plain async setup step: a fixture only under the flowrun plugin.
    """
    settings = context.deps

    async def fetch(product_id: int) -> Reply:
        await settings.wait_async(0.2)  # a cold product page takes a while on a real server
        url = f"{api_server.url}/products/{product_id}"
        return await fetch_json(url, timeout_s=settings.request_timeout_s)

    replies = await asyncio.gather(*map(fetch, range(1, seed_data.products + 1)))
    return sum(reply.status == 200 for reply in replies)


# --- Per-test clients ------------------------------------------------------------------------


@pytest.fixture
def api(api_server: Service, settings: Settings) -> JsonClient:
    """An anonymous client of the shop API."""
    return settings.client(api_server)


@pytest.fixture
def customer_api(api: JsonClient, auth_token: str) -> JsonClient:
    """A client of the shop API, authenticated with the suite's token."""
    return api.with_token(auth_token)


@pytest.fixture
def tokens(token_service: Service, settings: Settings) -> JsonClient:
    """A client of the token service."""
    return settings.client(token_service)


@pytest.fixture
def payments(payment_gateway: Service, settings: Settings) -> JsonClient:
    """A client of the payment gateway stub."""
    return settings.client(payment_gateway)


@pytest.fixture
def kv(minikv_proc: MinikvProc) -> Iterator[Client]:
    """A client of the key-value store, closed after the test."""
    with Client(minikv_proc.host, minikv_proc.port) as client:
        yield client


@pytest.fixture
def mailbox(mail_server: Service, settings: Settings) -> JsonClient:
    """A client of the mail sink, emptied before the test."""
    client = settings.client(mail_server)
    client.delete("/messages")
    return client
