"""Parametrized fixtures under a task: refused at collection, never a wrong value.

pytest sets a session fixture that depends on a parametrized one up once per parameter
value: it tears the dependant down when the parameter changes and sets it up again
(``FixtureDef.cached_result`` is keyed by the parameter's index). A task runs once per
session, in one DAG built before the first test, so the tests of the second value would
get the first value's result. Running one task per value would mean one DAG node per
value, with every dependant following the value as pytest does; until the plugin does
that, ``parametrized_problems`` finds every task fixture that would get a parametrized
value (``@pytest.fixture(params=...)``, ``@pytest.mark.parametrize`` of a fixture's name,
directly or through the fixtures it uses) and the selection refuses the session.

Imports the plugin's ``_discovery``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_flowrun._discovery import Discovery

if TYPE_CHECKING:
    from flowrun.dag import Dag


def parametrized_problems(session: pytest.Session, full: Dag, discovery: Discovery) -> list[str]:
    """One problem per task fixture and parametrized fixture it would get a value of."""
    entries = discovery.entries
    # pytest's only way to ask which definitions of a name a node sees (see _selection).
    manager = session._fixturemanager
    problems: list[str] = []
    reported: set[tuple[str, str]] = set()
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        params = set(getattr(callspec, "params", ()))
        if not params:
            continue
        tasks = [n for n in getattr(item, "fixturenames", ()) if n in entries]
        if not tasks:
            continue
        for name in sorted(full.ancestors(tasks)):
            entry = entries[name]
            for arg, param in _params_below(manager, entry.fixture_args, item, params):
                if (name, param) in reported:
                    continue
                reported.add((name, param))
                via = f"fixture {arg!r}" + ("" if arg == param else f", which uses {param!r},")
                problems.append(
                    f"task fixture {name!r} ({entry.origin}) uses {via} parametrized for "
                    f"{item.nodeid!r}; a task runs once per session, so every parameter "
                    f"would get the first one's value: declare one task per value (say "
                    f"'{name}_<value>') and a fixture parametrized over the values that takes "
                    f"those tasks as parameters and returns the one for request.param"
                )
    return problems


def _params_below(
    manager: Any, args: tuple[str, ...], item: pytest.Item, params: set[str]
) -> list[tuple[str, str]]:
    """``(argument, parameter)`` for each name in ``params`` that one of ``args`` is, or
    needs through the fixtures it uses, as ``item`` sees them."""
    found: list[tuple[str, str]] = []
    for arg in args:
        seen: set[str] = set()
        stack = [arg]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in params:
                found.append((arg, name))
            defs = manager.getfixturedefs(name, item) or ()
            if defs:
                stack.extend(defs[-1].argnames)
    return found
