"""Reading a task's function: how it runs (its ``TaskKind``) and what its parameters take.

``@task`` calls this once per decoration. A plain function's parameter names and kinds
are learnt once per code object (``_code_entry``), so a loop that decorates one ``def``
many times pays ``inspect.signature`` once; each function's own defaults and
annotations are still read. Imports ``flowrun.context`` and ``flowrun.errors`` only;
``flowrun.task`` uses it and re-exports ``TaskKind``.
"""

from __future__ import annotations

import builtins
import enum
import inspect
import types
import typing
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from flowrun.context import RunContext
from flowrun.errors import TaskDefinitionError, TaskSignatureError

_FUNCTION = types.FunctionType

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
