"""Hook specifications of the flowrun pytest plugin (added with ``pytest_addhooks``).

Implement them in a ``conftest.py`` or a plugin, like any pytest hook. Imports only
pytest: specs are documented no-op functions.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def pytest_flowrun_context(config: pytest.Config) -> Any:
    """Return the ``RunContext`` for the session's setup run, or the bundle to wrap in one.

    Called once, on the main thread, when the first test that needs a task is set up
    (never under ``--collect-only`` or when no selected test needs a task). The first
    non-None result is used; a value that is not a ``RunContext`` is wrapped in one.
    Tasks with a ``RunContext`` parameter need an implementation of this hook.

    :param config: The pytest config object.
    """
