"""Task authoring: the ``@task`` decorator, ``TaskSpec`` and ``TaskRegistry``.

``@task`` inspects the function once, at decoration time, and registers a ``TaskSpec``:
which parameter receives the ``RunContext``, whether it wants the ``upstream`` results,
whether it is async and whether it is a generator (code after ``yield`` is teardown).
The decorated function is returned unchanged, so it stays callable and picklable.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from flowrun._checks import _check_options, _check_resources
from flowrun._signature import (
    SPEC_ATTRIBUTE,
    TaskKind,
    _analyse_signature,
    _code_entry,
    _kind_of,
    _Param,
    _pytest_fixture_function,
    _same_definition,
    _signature_parameters,
    _unwrap,
)
from flowrun.errors import (
    DuplicateTaskError,
    InvalidDependencyError,
    SelfDependencyError,
    TaskDefinitionError,
    UnknownTaskError,
)

__all__ = [
    "TaskKind",
    "TaskRegistry",
    "TaskSpec",
    "default_registry",
    "make_spec",
    "spec_of",
    "task",
]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True, eq=False)
class TaskSpec:
    """Everything flowrun knows about one task; built by ``@task``, immutable afterwards.

    ``context_arg`` and ``upstream_arg`` name the parameters that receive the ``RunContext``
    and the dict of parent results; ``parent_args`` are parameters named after a dependency,
    each receiving that parent's result. ``requires`` lists parameters nobody can fill yet
    (only allowed for pytest fixtures, which the plugin binds through ``bound``);
    ``fixture`` is true for a ``@task`` placed above ``@pytest.fixture``; ``resources``
    are sorted ``(name, amount)`` pairs held while an attempt or the teardown runs.
    """

    name: str
    fn: Callable[..., Any]
    deps: tuple[str, ...] = ()
    timeout_s: float | None = None
    retries: int = 0
    retry_delay_s: float = 0.0
    kind: TaskKind = TaskKind.SYNC
    context_arg: str | None = None
    upstream_arg: str | None = None
    parent_args: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    bound: Mapping[str, Any] = field(default_factory=dict)
    fixture: bool = False
    resources: tuple[tuple[str, int], ...] = ()

    @property
    def doc(self) -> str | None:
        """The function's docstring, if any."""
        return inspect.getdoc(self.fn)

    @property
    def source(self) -> str:
        """Where the function comes from, as ``module.qualname``."""
        fn = _unwrap(self.fn)
        module = getattr(fn, "__module__", None) or "?"
        qualname = getattr(fn, "__qualname__", None) or repr(fn)
        return f"{module}.{qualname}"


class _UnfrozenTaskSpec:
    """The slot layout of ``TaskSpec`` without its frozen ``__setattr__`` (see ``_task_spec``)."""

    __slots__ = TaskSpec.__slots__


def _task_spec(
    name: str,
    fn: Callable[..., Any],
    deps: tuple[str, ...],
    timeout_s: float | None,
    retries: int,
    retry_delay_s: float,
    kind: TaskKind,
    context_arg: str | None,
    upstream_arg: str | None,
    parent_args: tuple[str, ...],
    requires: tuple[str, ...],
    fixture: bool,
    resources: tuple[tuple[str, int], ...],
) -> TaskSpec:
    """``TaskSpec(...)`` with the same arguments (and a fresh empty ``bound``), five times
    cheaper than the frozen ``__init__`` (an ``object.__setattr__`` per field): it fills an
    object of the same slot layout, then makes it a ``TaskSpec``, as ``_task_record`` does.
    """
    s: Any = _UnfrozenTaskSpec()  # its fields are TaskSpec's, in the same order
    s.name = name
    s.fn = fn
    s.deps = deps
    s.timeout_s = timeout_s
    s.retries = retries
    s.retry_delay_s = retry_delay_s
    s.kind = kind
    s.context_arg = context_arg
    s.upstream_arg = upstream_arg
    s.parent_args = parent_args
    s.requires = requires
    s.bound = {}
    s.fixture = fixture
    s.resources = resources
    s.__class__ = TaskSpec
    return s  # type: ignore[no-any-return]


class TaskRegistry:
    """An ordered collection of task specs, keyed by task name.

    Registration order is kept: it breaks ties in every ordering flowrun makes, so runs
    are deterministic. The engine snapshots the registry when a run starts.
    """

    def __init__(self) -> None:
        self._specs: dict[str, TaskSpec] = {}

    def register(self, spec: TaskSpec) -> TaskSpec:
        """Add ``spec``; raises ``DuplicateTaskError`` if another function holds its name.

        Re-registering the same function, or the same function from a fresh import of
        its module (a reloaded conftest, say), replaces the old spec.
        """
        old = self._specs.get(spec.name)
        if old is not None and not _same_definition(old.fn, spec.fn):
            raise DuplicateTaskError(spec.name, old.source, spec.source)
        self._specs[spec.name] = spec
        return spec

    def unregister(self, name: str) -> None:
        """Remove the task called ``name``; raises ``UnknownTaskError`` if there is none."""
        if name not in self._specs:
            raise UnknownTaskError(name, list(self._specs))
        del self._specs[name]

    def clear(self) -> None:
        """Remove every task."""
        self._specs.clear()

    def get(self, name: str) -> TaskSpec:
        """The spec called ``name``; raises ``UnknownTaskError`` if there is none."""
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownTaskError(name, list(self._specs)) from None

    def snapshot(self) -> dict[str, TaskSpec]:
        """A copy of the name -> spec mapping, in registration order."""
        return dict(self._specs)

    def names(self) -> list[str]:
        """Task names in registration order."""
        return list(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[TaskSpec]:
        return iter(list(self._specs.values()))

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"<TaskRegistry with {len(self._specs)} tasks>"


#: The registry a bare ``@task`` registers into; ``build_default_engine()`` uses it too.
default_registry = TaskRegistry()


@overload
def task(fn: F, /) -> F: ...


@overload
def task(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    deps: Iterable[str | Callable[..., Any]] = (),
    timeout_s: float | None = None,
    retries: int = 0,
    retry_delay_s: float = 0.0,
    resources: Mapping[str, int] | None = None,
    registry: TaskRegistry | None = None,
) -> Callable[[F], F]: ...


def task(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    deps: Iterable[str | Callable[..., Any]] = (),
    timeout_s: float | None = None,
    retries: int = 0,
    retry_delay_s: float = 0.0,
    resources: Mapping[str, int] | None = None,
    registry: TaskRegistry | None = None,
) -> Any:
    """Declare a function as a task and register it; usable as ``@task`` or ``@task(...)``.

    ``deps`` lists the tasks that must succeed first, by name or by the decorated function.
    ``timeout_s`` bounds each attempt, ``retries`` re-runs a failed attempt after
    ``retry_delay_s``. ``resources`` (``{"docker": 1}``) is what the task holds while an
    attempt or its teardown runs, capped by ``SchedulerConfig.resources``. The task goes
    to ``registry``, or to ``default_registry``.

    Raises ``TaskSignatureError`` for a parameter flowrun cannot fill,
    ``InvalidDependencyError`` for a ``deps`` entry that is not a task,
    ``InvalidOptionError`` for an out-of-range option (``InvalidResourceError`` for
    ``resources``) and ``DuplicateTaskError`` for a name another function already holds.
    """
    options = (name, deps, timeout_s, retries, retry_delay_s, resources, registry)
    if fn is None:  # ``@task(...)``: a partial; a closure over seven cells cost a fifth
        return functools.partial(_decorate, options)  # of a registration in a loop
    if not callable(fn):
        raise TaskDefinitionError(
            str(fn),
            f"@task takes the function to decorate, got {fn!r}; "
            f"to name the task write @task(name={fn!r})",
        )
    return _decorate(options, fn)


def _decorate(options: tuple[Any, ...], target: F) -> F:
    """``@task``'s work: build the spec, register it, leave it on ``target``."""
    name, deps, timeout_s, retries, retry_delay_s, resources, registry = options
    spec = _build_spec(target, name, deps, timeout_s, retries, retry_delay_s, resources, registry)
    if not spec.fixture:  # pytest fixtures join the plugin's DAG, not a registry
        (registry if registry is not None else default_registry).register(spec)
    # A builtin or slotted callable takes no attribute: it is reachable by name only.
    # (try/except, not contextlib.suppress: that was a tenth of a registration.)
    try:  # noqa: SIM105
        setattr(target, SPEC_ATTRIBUTE, spec)
    except (AttributeError, TypeError):
        pass
    return target


def make_spec(
    target: Callable[..., Any],
    *,
    name: str | None = None,
    deps: Iterable[str | Callable[..., Any]] = (),
    timeout_s: float | None = None,
    retries: int = 0,
    retry_delay_s: float = 0.0,
    resources: Mapping[str, int] | None = None,
    registry: TaskRegistry | None = None,
) -> TaskSpec:
    """Build the ``TaskSpec`` for ``target`` without registering it (``@task`` minus the registry).

    A pytest fixture definition (``@task`` above ``@pytest.fixture``) may keep parameters
    flowrun cannot fill; they are listed in ``requires`` for the pytest plugin to bind.
    """
    return _build_spec(target, name, deps, timeout_s, retries, retry_delay_s, resources, registry)


def _build_spec(
    target: Callable[..., Any],
    name: str | None,
    deps: Iterable[str | Callable[..., Any]],
    timeout_s: float | None,
    retries: int,
    retry_delay_s: float,
    resources: Mapping[str, int] | None,
    registry: TaskRegistry | None,
) -> TaskSpec:
    if not callable(target):
        raise TaskDefinitionError(str(target), f"@task needs a callable, got {target!r}")
    # A fresh plain function is no pytest fixture definition: skip the attribute lookups.
    plain = type(target) is _FUNCTION and not target.__dict__
    fixture_fn = None if plain else _pytest_fixture_function(target)
    fn = fixture_fn if fixture_fn is not None else target
    if name is None:
        name = getattr(target, "name", None) if fixture_fn is not None else None
        name = name or getattr(fn, "__name__", None)
    if not isinstance(name, str) or not name:
        raise TaskDefinitionError(repr(target), f"cannot name the task {target!r}; pass name=...")

    _check_options(name, timeout_s, retries, retry_delay_s)
    held = _check_resources(name, resources) if resources is not None else ()
    if type(deps) not in _LISTS:  # the checks below, skipped in the common case
        if isinstance(deps, (str, bytes)):
            raise InvalidDependencyError(
                name, deps, "is a string; deps takes a list, e.g. deps=['a']"
            )
        if not isinstance(deps, Iterable):  # None, or one task not in a list
            raise InvalidDependencyError(
                name, deps, "is not a list; deps takes a list, e.g. deps=[a]"
            )
    dep_names: tuple[str, ...] = ()
    if deps or type(deps) not in _LISTS:  # an empty list has nothing to resolve
        dep_names = _resolve_deps(
            name, deps, registry if registry is not None else default_registry
        )
    entry = _code_entry(fn) if fixture_fn is None else None
    if entry is None:
        kind = _kind_of(fn)
        params: list[_Param] | None = _signature_parameters(name, fn)
    else:
        kind = entry.kind
        params = entry.parameters(fn) if entry.shape else None  # None: nothing to analyse
    context_arg, upstream_arg, parent_args, requires = (
        _NO_ROLES
        if params is None
        else _analyse_signature(
            name, fn, params, dep_names, allow_unresolved=fixture_fn is not None
        )
    )
    return _task_spec(
        name,
        fn,
        dep_names,
        None if timeout_s is None else float(timeout_s),
        retries,
        float(retry_delay_s),
        kind,
        context_arg,
        upstream_arg,
        parent_args,
        requires,
        fixture_fn is not None,
        held,
    )


def spec_of(obj: object) -> TaskSpec | None:
    """The spec ``@task`` left on ``obj``, or None if it is not a task."""
    spec = getattr(obj, SPEC_ATTRIBUTE, None)
    return spec if isinstance(spec, TaskSpec) else None


_LISTS = (list, tuple)
#: What ``_analyse_signature`` finds in a function without parameters.
_NO_ROLES: tuple[None, None, tuple[str, ...], tuple[str, ...]] = (None, None, (), ())
_FUNCTION = types.FunctionType


def _resolve_deps(
    name: str, deps: Iterable[str | Callable[..., Any]], registry: TaskRegistry
) -> tuple[str, ...]:
    names: list[str] = []
    for dep in deps:
        if isinstance(dep, str):
            dep_name = dep
        elif callable(dep):
            spec = spec_of(dep)
            if spec is None:
                raise InvalidDependencyError(
                    name, dep, "is not a task; decorate it with @task before listing it in deps"
                )
            if not spec.fixture and registry._specs.get(spec.name) is not spec:
                raise InvalidDependencyError(
                    name,
                    dep,
                    f"is registered as {spec.name!r} in another registry; "
                    "register both tasks in the same registry",
                )
            dep_name = spec.name
        else:
            raise InvalidDependencyError(name, dep, "is neither a task name nor a decorated task")
        if dep_name == name:
            raise SelfDependencyError(name)
        if dep_name not in names:
            names.append(dep_name)
    return tuple(names)
