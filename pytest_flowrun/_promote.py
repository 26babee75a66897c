"""Promoted fixtures: existing session fixtures that join the setup DAG unedited.

``--flowrun-fixture NAME`` and the ``flowrun_fixtures`` ini option name session fixtures
(or ``fnmatch`` patterns of their names) defined anywhere: a conftest, a module in
``pytest_plugins``, an installed plugin. Once collection is over, ``promote`` turns each
one into a task, as if ``@task`` had been written above it:

* its ``FixtureDef`` keeps its name, scope and ``argnames`` (so pytest sets the same
  fixtures up first, and ``--setup-show`` tells the truth), but its function becomes a
  generated one that waits for the task's result, like a task fixture's;
* the fixture's own function becomes the task's: a parameter naming another task or
  promoted fixture is a DAG dependency, the others are session fixtures that pytest
  resolves on the main thread before the run (``TaskEntry.fixture_args``);
* ``request`` is a ``PromotedRequest``, safe from a worker thread: ``config``,
  ``fixturename``, ``scope``, ``node`` and ``session``, ``getfixturevalue`` of its own
  parameters, ``addfinalizer`` (called when the task is torn down); anything else raises
  an error naming the fixture.

A name or pattern that matches no fixture the session knows, a fixture that is not
session-scoped, parametrized, defined more than once, or that needs a narrower-scoped
fixture is refused with a ``pytest.UsageError``. A pattern skips what is not
session-scoped, pytest's own fixtures and private ones (``_name``: a plugin's internals,
which it may request dynamically, out of the run's sight); a name is refused for the
first two, and taken as given for the last.

pytest has no public API to find or change a fixture's definition after collection: this
module reads every ``FixtureDef`` from ``session._fixturemanager`` and sets ``FixtureDef.func``
and ``FixtureDef.argnames`` (both stable since pytest 8).

Imports the plugin's ``_discovery``, ``_names`` and ``_selection``; the runtime inside
functions.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_flowrun._discovery import Discovery, TaskEntry, make_fixture_function
from pytest_flowrun._names import GENERATED_ATTRIBUTE
from pytest_flowrun._selection import problems

#: Fixtures of these modules are never matched by a pattern: pytest's own.
_BUILTIN = ("_pytest.", "pytest_flowrun")


def promote(
    session: pytest.Session,
    discovery: Discovery,
    wanted: Sequence[str],
    value_of: Callable[[str, pytest.FixtureRequest], Any],
) -> None:
    """Make each session fixture that ``wanted`` names a task of ``discovery``.

    Raises ``pytest.UsageError`` listing every name or fixture that cannot be promoted.
    """
    known = _known_fixtures(session)
    names, errors = _matching(known, wanted)
    chosen: list[tuple[str, Any]] = []
    for name in names:
        if name in discovery.entries:
            continue  # already a task (a task fixture or a setup step)
        fixturedef, problem = _check(name, known, discovery)
        if problem is not None:
            errors.append(problem)
        elif fixturedef is not None:
            chosen.append((name, fixturedef))
    if errors:
        raise pytest.UsageError(problems(errors))
    for name, fixturedef in chosen:
        _promote_one(session, discovery, name, fixturedef, value_of)


def _known_fixtures(session: pytest.Session) -> dict[str, list[Any]]:
    """Every ``FixtureDef`` the session knows, by fixture name (names sorted)."""
    # No public API lists them (see the module docstring): pytest >= 9.1 has this method,
    # older ones the mapping.
    manager: Any = session._fixturemanager
    get_all = getattr(manager, "_get_all_fixture_defs", None)
    if get_all is not None:
        every = list(get_all())
    else:
        every = [d for defs in manager._arg2fixturedefs.values() for d in defs]
    known: dict[str, list[Any]] = {}
    for fixturedef in every:
        known.setdefault(fixturedef.argname, []).append(fixturedef)
    return dict(sorted(known.items()))


def _matching(known: dict[str, list[Any]], wanted: Sequence[str]) -> tuple[list[str], list[str]]:
    """The fixture names ``wanted`` names, in order, and the problems with ``wanted``."""
    names: list[str] = []
    errors: list[str] = []
    for pattern in wanted:
        if not any(c in pattern for c in "*?["):
            if pattern in known:
                names.append(pattern)
            else:
                close = difflib.get_close_matches(pattern, list(known), n=3)
                hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
                errors.append(
                    f"flowrun_fixtures names fixture {pattern!r}, which the session does not "
                    f"know{hint}; fix the name, or remove it from flowrun_fixtures / "
                    "--flowrun-fixture"
                )
            continue
        found = [
            n
            for n, defs in known.items()
            if fnmatch.fnmatchcase(n, pattern)
            and not n.startswith("_")  # a plugin's internals, often requested dynamically
            and defs
            and all(d.scope == "session" and not _builtin(d) for d in defs)
        ]
        if not found:
            errors.append(
                f"flowrun_fixtures pattern {pattern!r} matches no session fixture; "
                "fix it, or remove it from flowrun_fixtures / --flowrun-fixture"
            )
        names.extend(n for n in found if n not in names)
    return [n for i, n in enumerate(names) if n not in names[:i]], errors


def _builtin(fixturedef: Any) -> bool:
    module = getattr(fixturedef.func, "__module__", None) or ""
    return module.startswith(_BUILTIN) or bool(getattr(fixturedef.func, GENERATED_ATTRIBUTE, None))


def _check(name: str, known: dict[str, list[Any]], discovery: Discovery) -> tuple[Any, str | None]:
    """The one ``FixtureDef`` of ``name``, or the reason it cannot be promoted."""
    defs = known[name]
    what = f"flowrun_fixtures names fixture {name!r}"
    if len(defs) != 1:
        where = ", ".join(discovery.origin_of(d.func) for d in defs)
        return None, (
            f"{what}, which is defined {len(defs)} times ({where}); a task has one "
            "definition: rename the overriding fixture, or do not promote it"
        )
    fixturedef = defs[0]
    what += f" ({discovery.origin_of(fixturedef.func)})"
    if _builtin(fixturedef):
        return None, f"{what}, which is pytest's own; remove it from flowrun_fixtures"
    if fixturedef.scope != "session":
        return None, (
            f"{what}, which has {fixturedef.scope!r} scope; a task runs once per session: "
            "only session-scoped fixtures can be promoted"
        )
    if fixturedef.params is not None:
        return None, (
            f"{what}, which is parametrized; a task runs once per session, without params: "
            "declare one fixture per value and promote those"
        )
    for arg in fixturedef.argnames:
        other = known.get(arg)
        if arg != "request" and other and other[-1].scope != "session":
            return None, (
                f"{what}, which uses fixture {arg!r} of {other[-1].scope!r} scope; a task "
                f"can only use session-scoped fixtures: make {arg!r} session-scoped, or do "
                "not promote it"
            )
    return fixturedef, None


def _promote_one(
    session: pytest.Session,
    discovery: Discovery,
    name: str,
    fixturedef: Any,
    value_of: Callable[[str, pytest.FixtureRequest], Any],
) -> None:
    """Add fixture ``name`` to ``discovery`` as a task; its ``FixtureDef`` waits for it."""
    from flowrun.task import make_spec

    original = fixturedef.func
    fn = original
    if "request" in fixturedef.argnames:
        fn = _with_request(original, PromotedRequest(name, session))
    spec = make_spec(pytest.fixture(scope="session", name=name)(fn))
    baseid = fixturedef.baseid
    scope_dir = Path(session.config.rootpath, baseid) if baseid else None
    discovery.entries[name] = TaskEntry(spec, discovery.origin_of(original), scope_dir)
    params = tuple(a for a in fixturedef.argnames if a != "request")
    generated = make_fixture_function(name, spec, params, value_of, source=original)
    # pytest calls a fixture's function with the values of its argnames: the generated one
    # needs the request too (to start the run and wait for the task).
    setattr(fixturedef, "func", generated)  # noqa: B010  (Final in pytest's stubs)
    setattr(fixturedef, "argnames", ("request", *params))  # noqa: B010


class PromotedRequest:
    """What a promoted fixture gets as ``request``: the part of pytest's ``SubRequest``
    that is safe from a worker thread, for a session fixture.

    Anything else raises ``AttributeError`` naming the fixture and what to do instead.
    """

    scope = "session"

    def __init__(self, fixturename: str, session: pytest.Session) -> None:
        self.fixturename = fixturename
        self.session = session
        self.node = session
        self.config = session.config
        self._finalizers: list[Callable[[], object]] = []
        self._values: dict[str, Any] = {}

    def addfinalizer(self, finalizer: Callable[[], object]) -> None:
        """Call ``finalizer`` when the fixture is torn down (last added, first called)."""
        self._finalizers.append(finalizer)

    def getfixturevalue(self, argname: str) -> Any:
        """The value of one of the fixture's own parameters; raises ``LookupError`` for
        any other fixture, which cannot be set up from the setup run's thread."""
        if argname in self._values:
            return self._values[argname]
        raise LookupError(
            f"flowrun: fixture {self.fixturename!r} runs as a setup task and cannot set up "
            f"fixture {argname!r} with request.getfixturevalue; take {argname!r} as a "
            f"parameter of {self.fixturename!r}, or remove it from flowrun_fixtures"
        )

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise AttributeError(
            f"flowrun: fixture {self.fixturename!r} runs as a setup task, where "
            f"request.{attr} is not available (only config, fixturename, scope, node, "
            "session, getfixturevalue of its own parameters and addfinalizer are); "
            f"remove {self.fixturename!r} from flowrun_fixtures"
        )

    def finalize(self) -> None:
        """Call the finalizers, last added first; every one runs, the first error is raised."""
        error: BaseException | None = None
        while self._finalizers:
            try:
                self._finalizers.pop()()
            except BaseException as exc:  # raised once the others ran
                error = error or exc
        if error is not None:
            raise error


def _with_request(fn: Callable[..., Any], request: PromotedRequest) -> Callable[..., Any]:
    """``fn`` as a generator (sync or async) that receives ``request`` and calls its
    finalizers when it is torn down (or when its setup fails)."""
    wrapper: Callable[..., Any]
    if inspect.isasyncgenfunction(fn) or inspect.iscoroutinefunction(fn):
        is_gen = inspect.isasyncgenfunction(fn)

        async def async_wrapper(**kwargs: Any) -> Any:
            request._values = kwargs
            try:
                if is_gen:
                    async for value in fn(request=request, **kwargs):
                        yield value
                else:
                    yield await fn(request=request, **kwargs)
            finally:
                request.finalize()

        wrapper = async_wrapper
    else:
        is_gen = inspect.isgeneratorfunction(fn)

        def sync_wrapper(**kwargs: Any) -> Any:
            request._values = kwargs
            try:
                if is_gen:
                    yield from fn(request=request, **kwargs)
                else:
                    yield fn(request=request, **kwargs)
            finally:
                request.finalize()

        wrapper = sync_wrapper
    functools.update_wrapper(wrapper, fn)
    # The task's parameters are the fixture's, without request (which the wrapper gives).
    signature = inspect.signature(fn)
    params = [p for n, p in signature.parameters.items() if n != "request"]
    setattr(wrapper, "__signature__", signature.replace(parameters=params))  # noqa: B010
    return wrapper
