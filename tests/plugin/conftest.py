"""Fixtures of the plugin's tests."""

from __future__ import annotations

import pytest

from flowrun.task import TaskRegistry

from ._suite import BASE_INI, Suite


@pytest.fixture
def suite(clean_default_registry: TaskRegistry, pytester: pytest.Pytester) -> Suite:
    """A suite to build and run; the default task registry is restored afterwards."""
    pytester.makeini(BASE_INI)
    return Suite(pytester)
