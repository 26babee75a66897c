"""Shared fixtures of the test suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from flowrun.task import TaskRegistry, default_registry

# Hypothesis profiles. ``ci`` (the default) is small and derandomized: the same examples
# on every run, no example database, so CI is fast and never flaky from a new example.
# ``soak`` (``pytest tests/reliability --hypothesis-profile soak``) searches for long, with
# fresh randomness and the local example database to replay what it finds.
settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "soak",
    max_examples=2000,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci")


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
