"""Shared fixtures of the test suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flowrun.task import TaskRegistry, default_registry


@pytest.fixture
def registry() -> TaskRegistry:
    """A fresh registry, so tests never share tasks."""
    return TaskRegistry()


@pytest.fixture
def clean_default_registry() -> Iterator[TaskRegistry]:
    """The default registry, emptied for the test and restored afterwards."""
    saved = default_registry.snapshot()
    default_registry.clear()
    try:
        yield default_registry
    finally:
        default_registry.clear()
        for spec in saved.values():
            default_registry.register(spec)
