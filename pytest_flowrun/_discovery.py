"""Finding tasks in conftest and plugin modules and turning them into pytest fixtures.

Two declarations are recognised in a module that pytest registers as a plugin (every
``conftest.py``, and modules named in ``pytest_plugins``):

* a **setup step**, a function decorated with ``@task``: a session-scoped fixture with the
  task's name is added to the module, so pytest finds it like one written by hand;
* a **task fixture**, ``@task`` above ``@pytest.fixture(scope="session")``: the module's
  fixture is replaced by one with the same name, scope and autouse flag.

The module is changed when pytest registers it, before pytest parses its fixtures, so
pytest scopes the new fixtures to the conftest's directory like any other (and lists
them in ``--fixtures`` at the user's function, with its docstring). Each generated
fixture only waits for its task's result from the session's run; its parameters are the
fixtures pytest must set up first (the task's dependencies that are fixtures visible from
there, and the fixtures a task fixture asks for), so ``--setup-show`` and
``--setup-plan`` tell the truth. ``TaskEntry``, one task found, is declared and filled in
here: by ``scan``, then by ``link`` once every module is known.

Imports the plugin's ``_names``; ``flowrun.task`` inside functions.
"""

from __future__ import annotations

import inspect
import os
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from flowrun.task import TaskSpec

from pytest_flowrun._names import GENERATED_ATTRIBUTE, SPEC_ATTRIBUTE


class TaskEntry:
    """A task found in a plugin module.

    ``origin`` is where it is defined (``path:line``), ``scope_dir`` the directory of its
    conftest (None for a plugin module, visible everywhere). ``deps`` and ``parent_args``
    add to the spec's the parameters of a task fixture that name other tasks;
    ``fixture_args`` are the others, the fixtures pytest resolves for it.
    """

    # A slotted class rather than a dataclass, as the others of the plugin's start path:
    # making a dataclass costs about a millisecond at import, at every pytest start.
    __slots__ = ("deps", "fixture_args", "origin", "parent_args", "scope_dir", "spec")

    def __init__(
        self,
        spec: TaskSpec,
        origin: str,
        scope_dir: Path | None,
        deps: tuple[str, ...] = (),
        parent_args: tuple[str, ...] = (),
        fixture_args: tuple[str, ...] = (),
    ) -> None:
        self.spec = spec
        self.origin = origin
        self.scope_dir = scope_dir
        self.deps = deps
        self.parent_args = parent_args
        self.fixture_args = fixture_args

    def __repr__(self) -> str:
        return f"TaskEntry({self.spec.name!r}, origin={self.origin!r})"

    def spec_to_run(self, bound: Mapping[str, Any] | None = None) -> TaskSpec:
        """The spec the runtime runs: the entry's dependencies, with ``bound`` (the values
        of ``fixture_args``) when given, and nothing left in ``requires``."""
        if bound is None:
            return replace(self.spec, deps=self.deps, parent_args=self.parent_args, requires=())
        return replace(
            self.spec, deps=self.deps, parent_args=self.parent_args, bound=bound, requires=()
        )


class Discovery:
    """The tasks found so far in the session's plugin modules, and the errors in them."""

    __slots__ = ("_scanned", "entries", "errors", "remote", "rootpath")

    def __init__(self, rootpath: Path, remote: bool = False) -> None:
        self.rootpath = rootpath
        #: A pytest-xdist worker served by the controller (``--flowrun-xdist once``): the
        #: controller sets up the fixtures the tasks take and runs the tasks, so the
        #: worker's task fixtures take no parameter but ``request``.
        self.remote = remote
        self.entries: dict[str, TaskEntry] = {}
        self.errors: list[str] = []
        self._scanned: set[int] = set()

    def scan(
        self,
        module: types.ModuleType,
        plugin_name: str,
        value_of: Callable[[str, pytest.FixtureRequest], Any],
    ) -> None:
        """Find the tasks of ``module`` and add their fixtures to it (see the module docstring)."""
        from flowrun._signature import _pytest_fixture_function as pytest_fixture_function

        if id(module) in self._scanned:
            return
        found = tasks_in(module)
        if not found:
            return
        self._scanned.add(id(module))
        scope_dir: Path | None = None
        if plugin_name.endswith("conftest.py"):
            scope_dir = Path(plugin_name).parent
        added: list[tuple[str, object, TaskEntry]] = []
        for attr, obj, spec in found:
            fixture_fn = pytest_fixture_function(obj)
            origin = self.origin_of(spec.fn if fixture_fn is None else fixture_fn)
            if fixture_fn is not None and not spec.fixture:
                self.errors.append(
                    f"fixture {attr!r} ({origin}) has @pytest.fixture above @task; "
                    "put @task above @pytest.fixture (@task must be the outer decorator)"
                )
                continue
            if spec.fixture and not self._check_fixture(attr, obj, spec, origin):
                continue
            old = self.entries.get(spec.name)
            if old is not None:
                if old.spec is not spec:
                    self.errors.append(
                        f"task {spec.name!r} is defined twice: in {old.origin} and in {origin}; "
                        "task names are shared by the whole session, rename one of them"
                    )
                continue
            self.entries[spec.name] = entry = TaskEntry(spec, origin, scope_dir)
            added.append((attr, obj, entry))
        # Fixtures are made once the whole module is known: a task may depend on one below.
        for attr, obj, entry in added:
            spec = entry.spec
            fixture = pytest.fixture(
                scope="session",
                name=spec.name,
                autouse=bool(spec.fixture and _marker(obj).autouse),
            )(
                make_fixture_function(
                    spec.name, spec, self._fixture_params(entry), value_of, source=obj
                )
            )
            if spec.fixture:
                setattr(module, attr, fixture)
            else:
                setattr(module, f"_flowrun_fixture_{spec.name}", fixture)

    def link(self) -> None:
        """Fill in each entry's ``deps``, ``parent_args`` and ``fixture_args``.

        A task fixture's parameter names a task (a dependency) or a fixture, which only
        the whole session can tell: call this once every plugin module is scanned.
        """
        entries = self.entries
        for entry in entries.values():
            spec = entry.spec
            task_args = tuple(r for r in spec.requires if r in entries)
            entry.fixture_args = tuple(r for r in spec.requires if r not in entries)
            entry.deps = spec.deps + tuple(r for r in task_args if r not in spec.deps)
            entry.parent_args = spec.parent_args + tuple(
                r for r in task_args if r not in spec.parent_args
            )

    def _check_fixture(self, attr: str, obj: object, spec: TaskSpec, origin: str) -> bool:
        marker = _marker(obj)
        fixture_name = getattr(marker, "name", None) or attr
        problem = None
        if marker.scope != "session":
            scope = marker.scope if isinstance(marker.scope, str) else "dynamic"
            problem = (
                f"has scope {scope!r}; a task runs once per session: "
                "declare it @pytest.fixture(scope='session')"
            )
        elif marker.params is not None:
            problem = "is parametrized; a task runs once per session, without params"
        elif "request" in spec.requires:
            problem = "takes 'request'; a task cannot use pytest's request object"
        elif fixture_name != spec.name:
            problem = (
                f"is named {fixture_name!r} as a fixture but {spec.name!r} as a task; "
                "give the name once, to @pytest.fixture(name=...)"
            )
        if problem is not None:
            self.errors.append(f"task fixture {spec.name!r} ({origin}) {problem}")
            return False
        return True

    def _fixture_params(self, entry: TaskEntry) -> tuple[str, ...]:
        if self.remote:
            # The controller sets up the fixtures and runs the tasks: a test needing only a
            # child task gets its value without its parents' (which may not cross).
            return ()
        params: list[str] = []
        for dep in entry.spec.deps:
            other = self.entries.get(dep)
            if other is not None and _visible(other.scope_dir, entry.scope_dir):
                params.append(dep)
        for name in entry.spec.requires:
            if name not in params:
                params.append(name)
        return tuple(params)

    def origin_of(self, fn: Callable[..., Any]) -> str:
        """Where ``fn`` is defined, as ``path:line`` relative to the rootdir when inside it."""
        try:
            real = inspect.unwrap(fn)
            path = inspect.getsourcefile(real) or inspect.getfile(real)
            line = real.__code__.co_firstlineno
        except (TypeError, AttributeError):
            return getattr(fn, "__qualname__", repr(fn))
        try:
            shown = os.path.relpath(path, self.rootpath)
        except ValueError:
            shown = path
        if shown.startswith(".."):
            shown = path
        return f"{shown}:{line}"


def tasks_in(module: types.ModuleType) -> list[tuple[str, object, TaskSpec]]:
    """The ``(attribute, object, spec)`` of each task in ``module``."""
    from flowrun.task import TaskSpec

    found = []
    for attr, obj in list(vars(module).items()):
        try:
            # A fixture made by an earlier session in this process (pytest.main called
            # twice, a module kept in sys.modules) stands for what it replaced.
            obj = getattr(obj, GENERATED_ATTRIBUTE, None) or obj
            spec = getattr(obj, SPEC_ATTRIBUTE, None)
        except Exception:  # a hostile __getattr__: no task
            continue
        if isinstance(spec, TaskSpec):
            found.append((attr, obj, spec))
    return found


def _marker(obj: object) -> Any:
    # The scope, params and autouse flag of a fixture definition are only reachable
    # through its private marker; pytest offers no public accessor.
    return obj._fixture_function_marker  # type: ignore[attr-defined]


def _visible(defined_in: Path | None, used_from: Path | None) -> bool:
    """Is a fixture defined in conftest dir ``defined_in`` visible from ``used_from``?"""
    if defined_in is None:
        return True
    if used_from is None:
        return False
    return used_from == defined_in or defined_in in used_from.parents


def make_fixture_function(
    name: str,
    spec: TaskSpec,
    params: Sequence[str],
    value_of: Callable[[str, pytest.FixtureRequest], Any],
    *,
    source: object,
) -> Callable[..., Any]:
    """The function of the fixture for task ``name``: it waits for the task's result.

    It looks like the task's own function to pytest (name, module, docstring, source
    location) but takes ``request`` plus ``params``. ``source`` is the module attribute
    the task came from, kept on the function as ``GENERATED_ATTRIBUTE``.
    """

    def fixture(request: pytest.FixtureRequest, **_: Any) -> Any:
        return value_of(name, request)

    fn = spec.fn
    fixture.__name__ = getattr(fn, "__name__", name)
    fixture.__qualname__ = getattr(fn, "__qualname__", name)
    fixture.__module__ = getattr(fn, "__module__", None) or fixture.__module__
    fixture.__doc__ = spec.doc or f"flowrun task {name!r}, set up concurrently with the others."
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    signature = inspect.Signature(
        [inspect.Parameter("request", positional)]
        + [inspect.Parameter(p, positional) for p in params]
    )
    # __signature__ is what pytest reads for the fixtures to set up first;
    # __wrapped__ points --fixtures at the user's function.
    setattr(fixture, "__signature__", signature)  # noqa: B010
    setattr(fixture, "__wrapped__", fn)  # noqa: B010
    setattr(fixture, GENERATED_ATTRIBUTE, source)
    return fixture
