"""Task authoring: the ``@task`` decorator, ``TaskSpec`` and ``TaskRegistry``.

``@task`` inspects the function once, at decoration time, and registers a ``TaskSpec``:
which parameter receives the ``RunContext``, whether it wants the ``upstream`` results,
whether it is async and whether it is a generator (code after ``yield`` is teardown).
The decorated function is returned unchanged, so it stays callable and picklable.
"""

from __future__ import annotations

import builtins
import enum
import inspect
import math
import types
import typing
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from flowrun.context import RunContext
from flowrun.errors import (
    DuplicateTaskError,
    InvalidDependencyError,
    InvalidOptionError,
    InvalidRetriesError,
    InvalidTimeoutError,
    SelfDependencyError,
    TaskDefinitionError,
    TaskSignatureError,
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

#: Attribute under which ``@task`` leaves the spec on the decorated object.
SPEC_ATTRIBUTE = "__flowrun_task__"


class TaskKind(enum.Enum):
    """How a task's function runs: on the event loop or in the executor, once or around a yield."""

    SYNC = "sync"
    ASYNC = "async"
    SYNC_GENERATOR = "sync generator"
    ASYNC_GENERATOR = "async generator"

    @property
    def is_async(self) -> bool:
        return self in (TaskKind.ASYNC, TaskKind.ASYNC_GENERATOR)

    @property
    def is_generator(self) -> bool:
        return self in (TaskKind.SYNC_GENERATOR, TaskKind.ASYNC_GENERATOR)


@dataclass(frozen=True, slots=True, eq=False)
class TaskSpec:
    """Everything flowrun knows about one task; built by ``@task``, immutable afterwards.

    ``context_arg`` and ``upstream_arg`` name the parameters that receive the ``RunContext``
    and the dict of parent results; ``parent_args`` are parameters named after a dependency,
    each receiving that parent's result. ``requires`` lists parameters nobody can fill yet
    (only allowed for pytest fixtures, which the plugin binds through ``bound``);
    ``fixture`` is true for a ``@task`` placed above ``@pytest.fixture``.
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
    """The slot layout of ``TaskSpec`` without its frozen ``__setattr__``."""

    __slots__ = TaskSpec.__slots__

    name: str
    fn: Callable[..., Any]
    deps: tuple[str, ...]
    timeout_s: float | None
    retries: int
    retry_delay_s: float
    kind: TaskKind
    context_arg: str | None
    upstream_arg: str | None
    parent_args: tuple[str, ...]
    requires: tuple[str, ...]
    bound: Mapping[str, Any]
    fixture: bool


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
) -> TaskSpec:
    """``TaskSpec(...)`` with the same arguments (and a fresh empty ``bound``), five times
    cheaper: the frozen dataclass ``__init__`` pays an ``object.__setattr__`` per field,
    which was a third of a registration. This fills an object of identical slot layout and
    then makes it a ``TaskSpec`` (``__class__`` assignment between same-layout classes),
    frozen from then on; ``flowrun.state._task_record`` does the same for run records.
    """
    s = _UnfrozenTaskSpec()
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
    s.__class__ = TaskSpec  # type: ignore[assignment]
    return s  # type: ignore[return-value]


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
    registry: TaskRegistry | None = None,
) -> Any:
    """Declare a function as a task and register it; usable as ``@task`` or ``@task(...)``.

    ``deps`` lists the tasks that must succeed first, by name or by the decorated function.
    ``timeout_s`` bounds each attempt, ``retries`` re-runs a failed attempt after
    ``retry_delay_s``. The task goes to ``registry``, or to ``default_registry``.

    Raises ``TaskSignatureError`` for a parameter flowrun cannot fill,
    ``InvalidDependencyError`` for a ``deps`` entry that is not a task,
    ``InvalidOptionError`` for an out-of-range option and ``DuplicateTaskError`` for a
    name another function already holds.
    """
    if fn is not None and not callable(fn):
        raise TaskDefinitionError(
            str(fn),
            f"@task takes the function to decorate, got {fn!r}; "
            f"to name the task write @task(name={fn!r})",
        )

    def decorate(target: F) -> F:
        spec = _build_spec(target, name, deps, timeout_s, retries, retry_delay_s, registry)
        if not spec.fixture:  # pytest fixtures join the plugin's DAG, not a registry
            (registry if registry is not None else default_registry).register(spec)
        # A builtin or slotted callable takes no attribute: it is reachable by name only.
        # (try/except, not contextlib.suppress: that was a tenth of a registration.)
        try:  # noqa: SIM105
            setattr(target, SPEC_ATTRIBUTE, spec)
        except (AttributeError, TypeError):
            pass
        return target

    return decorate(fn) if fn is not None else decorate


def make_spec(
    target: Callable[..., Any],
    *,
    name: str | None = None,
    deps: Iterable[str | Callable[..., Any]] = (),
    timeout_s: float | None = None,
    retries: int = 0,
    retry_delay_s: float = 0.0,
    registry: TaskRegistry | None = None,
) -> TaskSpec:
    """Build the ``TaskSpec`` for ``target`` without registering it (``@task`` minus the registry).

    A pytest fixture definition (``@task`` above ``@pytest.fixture``) may keep parameters
    flowrun cannot fill; they are listed in ``requires`` for the pytest plugin to bind.
    """
    return _build_spec(target, name, deps, timeout_s, retries, retry_delay_s, registry)


def _build_spec(
    target: Callable[..., Any],
    name: str | None,
    deps: Iterable[str | Callable[..., Any]],
    timeout_s: float | None,
    retries: int,
    retry_delay_s: float,
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
    dep_names: tuple[str, ...] = ()
    if type(deps) not in _LISTS:  # the checks below, skipped in the common case
        if isinstance(deps, (str, bytes)):
            raise InvalidDependencyError(
                name, deps, "is a string; deps takes a list, e.g. deps=['a']"
            )
        if not isinstance(deps, Iterable):  # None, or one task not in a list
            raise InvalidDependencyError(
                name, deps, "is not a list; deps takes a list, e.g. deps=[a]"
            )
        dep_names = _resolve_deps(name, deps, _registry_or_default(registry))
    elif deps:
        dep_names = _resolve_deps(name, deps, _registry_or_default(registry))
    entry = _code_entry(fn) if fixture_fn is None else None
    if entry is not None:
        kind = entry.kind
        params = entry.parameters(fn)
    else:
        kind = _kind_of(fn)
        params = _signature_parameters(name, fn)
    context_arg, upstream_arg, parent_args, requires = _analyse_signature(
        name, fn, params, dep_names, allow_unresolved=fixture_fn is not None
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
    )


def _registry_or_default(registry: TaskRegistry | None) -> TaskRegistry:
    return registry if registry is not None else default_registry


def spec_of(obj: object) -> TaskSpec | None:
    """The spec ``@task`` left on ``obj``, or None if it is not a task."""
    spec = getattr(obj, SPEC_ATTRIBUTE, None)
    return spec if isinstance(spec, TaskSpec) else None


def _check_options(name: str, timeout_s: object, retries: object, retry_delay_s: object) -> None:
    if (
        (timeout_s is None or (type(timeout_s) in _NUMBERS and 0 < timeout_s < math.inf))  # type: ignore[operator]
        and type(retries) is int
        and retries >= 0
        and type(retry_delay_s) in _NUMBERS
        and 0 <= retry_delay_s < math.inf  # type: ignore[operator]
    ):
        return  # the common case, decided without the checks below (NaN fails the bounds)
    if timeout_s is not None and (
        not _is_real(timeout_s) or not (0 < float(timeout_s) < math.inf)  # type: ignore[arg-type]
    ):
        raise InvalidTimeoutError(
            "timeout_s", timeout_s, "a positive number of seconds, or None", task=name
        )
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise InvalidRetriesError("retries", retries, "a whole number >= 0", task=name)
    if not _is_real(retry_delay_s) or not (0 <= float(retry_delay_s) < math.inf):  # type: ignore[arg-type]
        raise InvalidOptionError(
            "retry_delay_s", retry_delay_s, "a number of seconds >= 0", task=name
        )


_NUMBERS = (int, float)
_LISTS = (list, tuple)
_FUNCTION = types.FunctionType


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


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


def _kind_of(fn: Callable[..., Any]) -> TaskKind:
    if inspect.isasyncgenfunction(fn):
        return TaskKind.ASYNC_GENERATOR
    if inspect.iscoroutinefunction(fn):
        return TaskKind.ASYNC
    if inspect.isgeneratorfunction(fn):
        return TaskKind.SYNC_GENERATOR
    # A sync decorator (functools.wraps, ``return fn(*args)``) around a generator function
    # returns the generator for its caller to drive: it is a generator task all the same.
    # (Around a coroutine function, the executor awaits the coroutine such a call returns.)
    inner = _unwrap(fn)
    if inner is not fn:
        if inspect.isasyncgenfunction(inner):
            return TaskKind.ASYNC_GENERATOR
        if inspect.isgeneratorfunction(inner):
            return TaskKind.SYNC_GENERATOR
    call = vars(type(fn)).get("__call__")  # a callable object with an async __call__
    if not inspect.isfunction(fn) and call is not None and inspect.iscoroutinefunction(call):
        return TaskKind.ASYNC
    return TaskKind.SYNC


_INJECTABLE = "keyword (flowrun passes the context and results by keyword)"

_EMPTY = inspect.Parameter.empty
_POSITIONAL_ONLY = inspect.Parameter.POSITIONAL_ONLY
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class _Param(typing.NamedTuple):
    """What ``_analyse_signature`` reads of one parameter, ``*args`` and ``**kwargs`` left out.

    ``is_context`` is None until asked: ``_CodeEntry`` fills it from its memo.
    """

    name: str
    kind: inspect._ParameterKind
    has_default: bool
    annotation: Any
    is_context: bool | None = None


def _signature_parameters(name: str, fn: Callable[..., Any]) -> list[_Param]:
    """The parameters of any callable, through ``inspect.signature``."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise TaskDefinitionError(
            name, f"cannot read the signature of task {name!r}: {exc}"
        ) from None
    return [
        _Param(p.name, p.kind, p.default is not _EMPTY, p.annotation)
        for p in signature.parameters.values()
        if p.kind not in _VARIADIC
    ]


def _analyse_signature(
    name: str,
    fn: Callable[..., Any],
    params: list[_Param],
    deps: tuple[str, ...],
    *,
    allow_unresolved: bool,
) -> tuple[str | None, str | None, tuple[str, ...], tuple[str, ...]]:
    if not params:
        return None, None, (), ()
    context_arg: str | None = None
    upstream_arg: str | None = None
    parent_args: list[str] = []
    requires: list[str] = []
    for param in params:
        is_context = param.is_context
        if is_context is None:
            is_context = _is_context_annotation(param.annotation, fn)
        if is_context:
            role = "context"
        elif param.name == "upstream":
            role = "upstream"
        elif param.name in deps:
            role = "parent"
        elif param.has_default:
            continue
        elif allow_unresolved:
            requires.append(param.name)
            continue
        else:
            raise TaskSignatureError(
                name,
                param.name,
                "has no default and flowrun cannot fill it: annotate it as RunContext[...] to "
                "receive the run context, name it 'upstream' to receive the parents' results, "
                "name it after a dependency, or give it a default (for a pytest fixture, "
                "put @task above @pytest.fixture so pytest supplies it)",
            )
        if param.kind is _POSITIONAL_ONLY:
            raise TaskSignatureError(
                name, param.name, f"is positional-only; make it a {_INJECTABLE}"
            )
        if role == "context":
            if context_arg is not None:
                raise TaskSignatureError(
                    name, param.name, f"is a second RunContext parameter (after {context_arg!r})"
                )
            context_arg = param.name
        elif role == "upstream":
            upstream_arg = param.name
        else:
            parent_args.append(param.name)
    return context_arg, upstream_arg, tuple(parent_args), tuple(requires)


class _CodeEntry:
    """What ``@task`` learns once per code object of a plain function, reused for every
    function made from it (the README's family of tasks makes one per loop iteration).

    ``inspect.signature`` was most of a registration's cost. A plain function (a
    ``types.FunctionType`` with nothing in its ``__dict__`` but the spec ``@task`` leaves:
    no ``__wrapped__``, ``__signature__`` or coroutine marker) has the signature its code
    object gives, with the defaults and annotations of the function itself; those are
    read from each function, the names, kinds and task kind once per code object (the
    first time through ``inspect.signature``, so its errors stay the same).

    ``verdicts`` remembers, per parameter, whether its annotation means ``RunContext``:
    reused only for the very same annotation object and, for a string annotation (which
    is resolved in the function's globals), only for a function with the same globals as
    the one it was resolved for.
    """

    __slots__ = ("code", "kind", "shape", "verdicts")

    def __init__(
        self,
        code: weakref.ref[types.CodeType],
        kind: TaskKind,
        shape: tuple[tuple[str, inspect._ParameterKind, int | None], ...],
    ) -> None:
        self.code = code
        self.kind = kind
        #: (name, kind, index into __defaults__ for a positional parameter, else None)
        self.shape = shape
        self.verdicts: dict[str, tuple[object, bool, weakref.ref[Any] | None]] = {}

    def parameters(self, plain: Callable[..., Any]) -> list[_Param]:
        if not self.shape:
            return []
        fn = typing.cast(types.FunctionType, plain)
        defaults = fn.__defaults__ or ()
        kwdefaults = fn.__kwdefaults__ or {}
        annotations = fn.__annotations__
        verdicts = self.verdicts
        params = []
        for name, kind, index in self.shape:
            if index is None:
                has_default = kwdefaults.get(name, _EMPTY) is not _EMPTY
            else:
                has_default = -index <= len(defaults) and defaults[index] is not _EMPTY
            annotation = annotations.get(name, _EMPTY)
            if annotation is _EMPTY:
                is_context = False
            else:
                is_context = self._verdict(fn, name, annotation, verdicts.get(name))
            params.append(_Param(name, kind, has_default, annotation, is_context))
        return params

    def _verdict(
        self,
        fn: types.FunctionType,
        name: str,
        annotation: object,
        memo: tuple[object, bool, weakref.ref[Any] | None] | None,
    ) -> bool:
        if memo is not None and memo[0] is annotation:
            owner = memo[2]
            if owner is None:
                return memo[1]
            resolved_for = owner()
            if resolved_for is not None and resolved_for.__globals__ is fn.__globals__:
                return memo[1]
        verdict = _is_context_annotation(annotation, fn)
        owner = weakref.ref(fn) if isinstance(annotation, str) else None
        self.verdicts[name] = (annotation, verdict, owner)
        return verdict


#: ``id(code object)`` -> its entry. A ``WeakKeyDictionary`` does the same, at three times
#: the cost of a lookup: each entry holds a weak reference to its code object, checked on
#: lookup (an id can be reused once its object is gone) and dropping the entry with it.
_CODE_ENTRIES: dict[int, _CodeEntry] = {}
_PLAIN_DICT_KEYS = frozenset({SPEC_ATTRIBUTE})


def _forget_code(key: int, ref: weakref.ref[types.CodeType]) -> None:
    entry = _CODE_ENTRIES.get(key)
    if entry is not None and entry.code is ref:
        del _CODE_ENTRIES[key]


def _code_entry(fn: Callable[..., Any]) -> _CodeEntry | None:
    """The entry for a plain function's code object, made on first use; None for any other
    callable, whose signature ``inspect.signature`` reads every time."""
    if type(fn) is not _FUNCTION:
        return None
    attributes = fn.__dict__
    if attributes and not attributes.keys() <= _PLAIN_DICT_KEYS:
        return None
    code = fn.__code__
    key = id(code)
    entry = _CODE_ENTRIES.get(key)
    if entry is None or entry.code() is not code:
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            return None  # the slow path raises the same error, with the task's name
        positional = code.co_argcount
        shape = tuple(
            (p.name, p.kind, i - positional if i < positional else None)
            for i, p in enumerate(signature.parameters.values())
            if p.kind not in _VARIADIC
        )
        ref = weakref.ref(code, lambda ref: _forget_code(key, ref))
        entry = _CodeEntry(ref, _kind_of(fn), shape)
        _CODE_ENTRIES[key] = entry
    return entry


def _is_context_annotation(annotation: object, fn: Callable[..., Any]) -> bool:
    if annotation is inspect.Parameter.empty:
        return False
    if isinstance(annotation, str):
        return _is_context_string(annotation, fn)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_context_annotation(arg, fn) for arg in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _is_context_annotation(typing.get_args(annotation)[0], fn)
    candidate = origin if origin is not None else annotation
    return isinstance(candidate, type) and issubclass(candidate, RunContext)


def _is_context_string(annotation: str, fn: Callable[..., Any]) -> bool:
    """Resolve a string annotation (``from __future__ import annotations``) by its head name."""
    text = annotation.strip().strip("'\"")
    for part in text.split("|"):
        head = part.split("[", 1)[0].strip()
        if head in ("Optional", "typing.Optional", "Annotated", "typing.Annotated") and "[" in part:
            inner = part.split("[", 1)[1].rsplit("]", 1)[0].split(",")[0]
            if _is_context_string(inner, fn):
                return True
            continue
        target: object = _lookup_dotted(head, getattr(_unwrap(fn), "__globals__", {}))
        if target is None:
            if head.rsplit(".", 1)[-1] == "RunContext":
                return True
        elif isinstance(target, type) and issubclass(target, RunContext):
            return True
    return False


def _lookup_dotted(dotted: str, namespace: Mapping[str, Any]) -> object:
    first, *rest = dotted.split(".")
    obj: object = namespace.get(first, getattr(builtins, first, None))
    for attr in rest:
        obj = getattr(obj, attr, None)
    return obj


def _unwrap(fn: Callable[..., Any]) -> Callable[..., Any]:
    while True:
        inner = getattr(fn, "func", None)  # functools.partial
        if inner is None or not callable(inner):
            unwrapped: Callable[..., Any] = inspect.unwrap(fn)
            return unwrapped
        fn = inner


def _pytest_fixture_function(obj: object) -> Callable[..., Any] | None:
    """The function inside a pytest fixture definition (pytest >= 8.4), without importing pytest."""
    get_wrapped = getattr(obj, "_get_wrapped_function", None)
    if get_wrapped is None or not hasattr(obj, "_fixture_function_marker"):
        return None
    wrapped = get_wrapped()
    return wrapped if callable(wrapped) else None


def _same_definition(old: Callable[..., Any], new: Callable[..., Any]) -> bool:
    """True for the same function, or the same source re-executed in a fresh module."""
    if old is new:
        return True
    old, new = _unwrap(old), _unwrap(new)
    if old is new:
        return True
    old_globals = getattr(old, "__globals__", None)
    new_globals = getattr(new, "__globals__", None)
    return (
        old_globals is not None
        and new_globals is not None
        and old_globals is not new_globals
        and getattr(old, "__module__", None) == getattr(new, "__module__", None)
        and getattr(old, "__qualname__", None) == getattr(new, "__qualname__", None)
    )
