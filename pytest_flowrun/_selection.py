"""Selection: which tasks the selected tests need, checked once collection is over.

``select`` validates the tasks found in the session's plugin modules as one DAG, then
asks pytest which of them the collected items see, and checks what only a collected
session can tell: a task and another fixture sharing a name, and the fixtures a task
fixture uses (visible from the first test that needs setup, session-scoped, needing no
task). Every problem is reported at once, in one ``pytest.UsageError``.

Imports the plugin's ``_discovery`` and ``_names``, ``_params`` when some item is
parametrized; the runtime only inside functions.
"""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flowrun._discovery import Discovery, TaskEntry
from pytest_flowrun._names import DAG_NAME, GENERATED_ATTRIBUTE

if TYPE_CHECKING:
    from flowrun.dag import Dag


class Selection:
    """The DAG of every task found, and the part of it that the selected tests need.

    ``selected`` holds the tasks the selected tests ask for and all they depend on,
    ``excluded`` the others, both in the DAG's order.
    """

    # Not a dataclass: making one costs about a millisecond at every pytest start.
    __slots__ = ("excluded", "full", "selected")

    def __init__(
        self, full: Dag, selected: tuple[str, ...] = (), excluded: tuple[str, ...] = ()
    ) -> None:
        self.full = full
        self.selected = selected
        self.excluded = excluded

    def including(self, name: str) -> Selection:
        """This selection with task ``name`` and what it depends on added to it."""
        keep = self.full.ancestors([*self.selected, name])
        names = self.full.names
        return Selection(
            self.full,
            selected=tuple(n for n in names if n in keep),
            excluded=tuple(n for n in names if n not in keep),
        )


def select(session: pytest.Session, discovery: Discovery) -> Selection | None:
    """The tasks that ``session``'s items need; None when the session has no task.

    Raises ``pytest.UsageError`` listing every problem: a bad declaration, a bad DAG, a
    name shared by a task and another fixture, a task fixture asking for a fixture that
    is out of sight, narrower than the session, or that needs a task.
    """
    full = validate(discovery)
    if full is None:
        return None
    errors: list[str] = []
    direct = _requested(session, full, discovery, errors)
    if direct and any(hasattr(item, "callspec") for item in session.items):
        from pytest_flowrun._params import parametrized_problems  # parametrized items only

        errors.extend(parametrized_problems(session, full, discovery))
    if errors:
        raise pytest.UsageError(problems(errors))
    selected: tuple[str, ...] = ()
    if direct:
        keep = full.ancestors(direct)
        selected = tuple(n for n in full.names if n in keep)
    return Selection(full, selected, tuple(n for n in full.names if n not in selected))


def validate(discovery: Discovery) -> Dag | None:
    """The DAG of every task ``discovery`` found; None when it found none.

    Raises ``pytest.UsageError`` listing every bad declaration, or what makes the DAG
    invalid (a missing dependency, a cycle).
    """
    errors = list(discovery.errors)
    if not discovery.entries:
        if errors:
            raise pytest.UsageError(problems(errors))
        return None
    from flowrun.dag import build_dag
    from flowrun.errors import FlowrunError

    discovery.link()
    full: Dag | None = None
    try:
        full = build_dag(DAG_NAME, [entry.spec_to_run() for entry in discovery.entries.values()])
    except FlowrunError as exc:
        errors.append(str(exc))
    if errors or full is None:
        raise pytest.UsageError(problems(errors))
    return full


def check_resources(selection: Selection, caps: dict[str, int]) -> None:
    """Refuse, before any test runs, a selected task holding a resource with no cap (or
    more than its cap) in ``--flowrun-resources`` / ``flowrun_resources``."""
    errors = []
    for name in selection.selected:
        spec = selection.full.specs[selection.full.index[name]]
        for resource, amount in spec.resources:
            cap = caps.get(resource)
            if cap is None:
                errors.append(
                    f"task {name!r} holds resource {resource!r}, which no cap names; add "
                    f"'{resource}=N' to --flowrun-resources or the flowrun_resources ini option"
                )
            elif amount > cap:
                errors.append(
                    f"task {name!r} holds {amount} of resource {resource!r}, above its cap "
                    f"of {cap} (--flowrun-resources / flowrun_resources): it could never start"
                )
    if errors:
        raise pytest.UsageError(problems(errors))


def problems(errors: list[str]) -> str:
    """The message of the ``pytest.UsageError`` for ``errors``: one line, or a list."""
    if len(errors) == 1:
        return f"flowrun: {errors[0]}"
    return "flowrun found problems in the setup tasks:\n" + "\n".join(f"  - {e}" for e in errors)


def _requested(
    session: pytest.Session, full: Dag, discovery: Discovery, errors: list[str]
) -> dict[str, pytest.Item]:
    """The tasks the selected items ask for, each with the first item asking.

    Appends to ``errors`` the problems found on the way.
    """
    entries = discovery.entries
    # The fixture manager is pytest's only way to ask which definitions of a name a
    # node sees (getfixturedefs has kept its signature since pytest 8).
    manager = session._fixturemanager
    direct: dict[str, pytest.Item] = {}
    seen: set[tuple[str, int]] = set()
    reported: set[int] = set()
    for item in session.items:
        names = getattr(item, "fixturenames", None)
        if not names:
            continue
        for name in names:
            entry = entries.get(name)
            if entry is None:
                continue
            direct.setdefault(name, item)
            key = (name, id(item.parent))
            if key in seen:
                continue
            seen.add(key)
            for fixturedef in manager.getfixturedefs(name, item) or ():
                if getattr(fixturedef.func, GENERATED_ATTRIBUTE, False):
                    continue
                if id(fixturedef) not in reported:
                    reported.add(id(fixturedef))
                    where = discovery.origin_of(fixturedef.func)
                    errors.append(
                        f"task {name!r} ({entry.origin}) and fixture {name!r} ({where}) "
                        "have the same name; rename one of them"
                    )
    if not direct:
        return direct
    # The first test that needs a task starts the run, and the fixtures every task
    # uses are resolved from there.
    first = next(iter(direct.values()))
    for name in full.ancestors(direct):
        entry = entries[name]
        item = direct.get(name, first)
        for arg in entry.fixture_args:
            found = _check_argument(manager, discovery, entry, arg, item)
            if not found and not manager.getfixturedefs(arg, first):
                found = [
                    f"task fixture {name!r} ({entry.origin}) uses fixture {arg!r}, which "
                    f"{first.nodeid!r} cannot see; the first test needing setup starts the "
                    f"whole run, so define {arg!r} where every such test sees it"
                ]
            errors.extend(found)
    return direct


def _check_argument(
    manager: Any, discovery: Discovery, entry: TaskEntry, arg: str, item: pytest.Item
) -> list[str]:
    """The problems with fixture ``arg`` of task fixture ``entry``, as seen from ``item``."""
    what = f"task fixture {entry.spec.name!r} ({entry.origin})"
    fixturedefs = manager.getfixturedefs(arg, item)
    if not fixturedefs:
        return [
            f"{what} takes parameter {arg!r}, which is neither a task nor a fixture "
            f"visible to {item.nodeid!r}"
        ]
    fixturedef = fixturedefs[-1]
    if fixturedef.scope != "session":
        where = discovery.origin_of(fixturedef.func)
        return [
            f"{what} uses fixture {arg!r} ({where}), which has {fixturedef.scope!r} "
            "scope; a task runs once per session, so it can only use session-scoped "
            "fixtures"
        ]
    task = task_below(manager, fixturedef, item, discovery.entries)
    if task is not None:
        return [
            f"{what} uses fixture {arg!r}, which needs task {task!r}; the fixtures a task "
            f"uses are set up before the run starts: make {arg!r} a task"
        ]
    return []


def task_below(
    manager: Any, fixturedef: pytest.FixtureDef[Any], item: pytest.Item, tasks: Container[str]
) -> str | None:
    """The first of ``tasks`` that ``fixturedef`` needs, directly or through other
    fixtures, as ``item`` sees them (``manager``: the session's fixture manager)."""
    seen: set[str] = set()
    stack: list[str] = list(fixturedef.argnames)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in tasks:
            return name
        for other in manager.getfixturedefs(name, item) or ():
            stack.extend(other.argnames)
    return None
