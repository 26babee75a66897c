"""Tasks asked for dynamically: ``request.getfixturevalue("task")``, a doctest's
``getfixture("task")``.

Collection cannot see such a request, so the task may be missing from the selection.
pytest sets a fixture's own fixtures up before it, so the first task fixture that
reaches the plugin may be a dependency of the one asked for: ``requested_tasks`` walks
the chain of fixture requests up to the test, and the run starts with every task on it.

Once the run is on, it cannot grow: its DAG, gates and priorities are fixed when it
starts. A task that is not in it would need a second run on the same loop whose
dependencies on the first run's tasks are served from their results (the runtime has no
way to bind a task's upstream to values yet), so it is refused with ``not_in_run``, which
says why and what to do.

Imports nothing of the plugin.
"""

from __future__ import annotations

from collections.abc import Container

import pytest


def requested_tasks(request: pytest.FixtureRequest, tasks: Container[str]) -> list[str]:
    """The tasks on ``request``'s chain, from the fixture being set up to the test."""
    names: list[str] = []
    current: object = request
    while current is not None:
        name = getattr(current, "fixturename", None)
        if isinstance(name, str) and name in tasks and name not in names:
            names.append(name)
        # A SubRequest's parent request; pytest has no public accessor for it.
        current = getattr(current, "_parent_request", None)
    return names


def not_in_run(name: str) -> str:
    """Why task ``name``, asked for after the run started without it, cannot be served."""
    return (
        f"flowrun: task {name!r} was requested dynamically (request.getfixturevalue or a "
        "doctest's getfixture) after the setup run had started without it: no collected "
        "test names it, and a run cannot take new tasks once it has started; name "
        f"{name!r} where collection sees it, as a parameter of the test or of a fixture it "
        f"uses, or with @pytest.mark.usefixtures({name!r})"
    )
