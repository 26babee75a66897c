"""Fixtures of the runtime tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from flowrun.engine import Engine, build_default_engine
from flowrun.task import TaskRegistry


@pytest.fixture
def engine(registry: TaskRegistry) -> Engine:
    """An engine over the test's fresh ``registry``, with its own in-memory state store."""
    return build_default_engine(registry=registry)


@pytest.fixture(autouse=True)
def no_asyncio_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test after which asyncio logged an error.

    "Task exception was never retrieved" or "Exception in callback" means flowrun lost
    an exception in its own bookkeeping: the kind of bug that leaves a run hanging.
    """
    caplog.set_level(logging.ERROR, logger="asyncio")
    yield
    errors = [r for r in caplog.get_records("call") if r.name == "asyncio"]
    assert not errors, "asyncio logged: " + "\n".join(r.getMessage() for r in errors)
