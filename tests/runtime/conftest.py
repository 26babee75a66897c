"""Fixtures of the runtime tests."""

from __future__ import annotations

import pytest

from flowrun.engine import Engine, build_default_engine
from flowrun.task import TaskRegistry


@pytest.fixture
def engine(registry: TaskRegistry) -> Engine:
    """An engine over the test's fresh ``registry``, with its own in-memory state store."""
    return build_default_engine(registry=registry)
