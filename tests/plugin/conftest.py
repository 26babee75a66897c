"""Fixtures of the plugin's tests."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowrun.task import TaskRegistry

from ._servers import is_alive, pids
from ._suite import BASE_INI, Suite


@pytest.fixture
def suite(clean_default_registry: TaskRegistry, pytester: pytest.Pytester) -> Suite:
    """A suite to build and run; the default task registry is restored afterwards."""
    pytester.makeini(BASE_INI)
    return Suite(pytester)


@pytest.fixture
def leftovers(pytester: pytest.Pytester) -> Iterator[Path]:
    """The suite's directory; servers a failing test left running are killed afterwards."""
    yield pytester.path
    for pid in pids(pytester.path).values():
        if is_alive(pid):
            os.kill(pid, signal.SIGKILL)
