"""``--flowrun-loop asyncio-session``: the setup run on pytest-asyncio's session loop.

pytest-asyncio (1.x) keeps its session-scoped loop in an ``asyncio.Runner``, the value of
its private fixture ``_session_scoped_runner``; the loop runs only inside that runner's
``run``, on the main thread, for one session-loop test or async fixture at a time, and is
idle in between. ``BorrowedLoopPortal`` keeps it running from a thread of flowrun's own
(the *driver*) whenever pytest does not, and hands it over around each ``run``: the
runner's ``run`` is wrapped with "stop the driver, run, restart the driver". Tasks and
session-loop tests then share one loop, so what a task creates (a server, a client, a
queue) works in those tests. The hand-over wraps ``run`` and not the loop's
``run_until_complete``: ``run`` is where pytest-asyncio enters the loop, always on the
main thread, never nested.

The portal never closes the loop: it stops its driver after the run's teardown, and
pytest-asyncio's runner closes the loop afterwards (the session finalizer that tears the
run down is registered after the runner is set up, so it runs before the runner's).

``AsyncioSessionLoop`` holds the mode's checks, refused with ``pytest.UsageError`` before
anything runs: pytest-asyncio missing, older than ``OLDEST_PYTEST_ASYNCIO``, without the
private runner fixture, or a ``pytest_asyncio_loop_factories`` implementation (it rebuilds
the session loop). ``.ci/asyncio-matrix`` runs the mode's tests on each release from
``OLDEST_PYTEST_ASYNCIO`` to ``NEWEST_TESTED``.

It also fails the setup of a test, before any of its fixtures is set up, when something
on another loop than the session loop (a function-scoped one, most often) needs an async
task, directly or through other fixtures: an async test, or a pytest-asyncio async
fixture. A value such a task made may be bound to the session loop, and awaiting it from
another loop can wait forever (an ``asyncio.Queue``'s ``get``). The rule looks at the
task's kind, not at its value, so an async task returning plain data is refused there too;
the message names the fix. Sync tasks are not concerned (their values are not loop-bound).
Which loop a test or fixture gets is read the way pytest-asyncio reads it (its marks, the
fixture attribute its ``fixture`` decorator sets, its ini options); a test fails when the
two readings differ.

The portal itself, and its hand-over, are ``_borrowed_portal``'s.

Imports pytest, the standard library, ``_portal``, ``_borrowed_portal`` and ``_selection``
(its fixture walk); registered by ``plugin`` only in this mode.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Iterable
from typing import Any, TypeVar

import pytest

from pytest_flowrun._borrowed_portal import MODE, BorrowedLoopPortal
from pytest_flowrun._portal import LoopPortal
from pytest_flowrun._selection import task_below

T = TypeVar("T")

#: The oldest pytest-asyncio whose session loop lives in ``_session_scoped_runner`` and runs
#: every session-loop test and fixture through that runner's ``run`` (1.1 runs tests
#: otherwise, and the hand-over would miss them).
OLDEST_PYTEST_ASYNCIO = (1, 2)
#: The newest pytest-asyncio release line ``.ci/asyncio-matrix`` runs the mode's tests on.
NEWEST_TESTED = (1, 5)
#: pytest-asyncio's private fixture holding the session loop's ``asyncio.Runner``.
RUNNER_FIXTURE = "_session_scoped_runner"
#: pytest-asyncio's hook that builds its loops from factories (1.4 and later).
LOOP_FACTORIES_HOOK = "pytest_asyncio_loop_factories"
#: The name ``plugin`` registers ``AsyncioSessionLoop`` under.
PLUGIN_NAME = "flowrun-asyncio-session"
#: pytest-asyncio's name of the session loop's scope.
SESSION = "session"


class AsyncioSessionLoop:
    """The checks of ``--flowrun-loop asyncio-session``, registered at configure.

    Raises ``pytest.UsageError`` when pytest-asyncio is missing or too old (at once), and
    when a ``pytest_asyncio_loop_factories`` hook is implemented (after collection, when
    every conftest is loaded, before any test runs).
    """

    def __init__(self, config: pytest.Config) -> None:
        from importlib.metadata import PackageNotFoundError, version

        oldest = ".".join(map(str, OLDEST_PYTEST_ASYNCIO))
        tested = f"tested with {oldest} to {'.'.join(map(str, NEWEST_TESTED))}"
        try:
            installed = version("pytest-asyncio")
        except PackageNotFoundError:
            installed = None
        if installed is None or not config.pluginmanager.hasplugin("asyncio"):
            raise pytest.UsageError(
                f"--flowrun-loop {MODE} needs pytest-asyncio {oldest} or later ({tested}), "
                f"loaded: pip install 'pytest-asyncio>={oldest}' (and do not pass "
                "-p no:asyncio), or use --flowrun-loop thread"
            )
        if _version_tuple(installed) < OLDEST_PYTEST_ASYNCIO:
            raise pytest.UsageError(
                f"--flowrun-loop {MODE} needs pytest-asyncio {oldest} or later ({tested}), "
                f"found {installed}: upgrade it, or use --flowrun-loop thread"
            )
        from pytest_asyncio import plugin

        if RUNNER_FIXTURE not in vars(plugin):
            raise pytest.UsageError(
                f"--flowrun-loop {MODE} relies on pytest-asyncio's private fixture "
                f"{RUNNER_FIXTURE!r}, which pytest-asyncio {installed} no longer has "
                f"({tested}): install one of those, or use --flowrun-loop thread"
            )
        #: The async tasks' fixture names, given by ``share_async_tasks`` at collection.
        self.async_tasks: frozenset[str] = frozenset()

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Refuse a ``pytest_asyncio_loop_factories`` implementation."""
        hook = getattr(session.config.hook, LOOP_FACTORIES_HOOK, None)
        impls = hook.get_hookimpls() if hook is not None else []
        if impls:
            names = ", ".join(sorted({impl.plugin_name for impl in impls}))
            raise pytest.UsageError(
                f"--flowrun-loop {MODE} cannot share a session loop that "
                f"{LOOP_FACTORIES_HOOK} rebuilds (implemented in {names}): remove that "
                "hook, or use --flowrun-loop thread"
            )

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Fail a test whose async code on a loop other than the session loop needs an
        async task: the test itself, or one of its pytest-asyncio fixtures (before any
        fixture is set up: it could wait forever on a loop-bound value)."""
        if not self.async_tasks:
            return
        names = getattr(item, "fixturenames", ())
        needed = [name for name in names if name in self.async_tasks]
        if not needed:
            return
        from pytest_asyncio import is_async_test

        scope = _test_loop_scope(item) if is_async_test(item) else SESSION
        if scope != SESSION:
            pytest.fail(
                f"flowrun: test {item.name!r} runs on pytest-asyncio's {scope}-scoped loop "
                f"but needs async task {needed[0]!r}, whose values may be bound to the "
                f"session loop (--flowrun-loop {MODE}): mark the test "
                '@pytest.mark.asyncio(loop_scope="session"), or set '
                "asyncio_default_test_loop_scope = session in the ini file",
                pytrace=False,
            )
        found = self._fixture_off_the_loop(item, names)
        if found is not None:
            fixture, scope, task = found
            pytest.fail(
                f"flowrun: fixture {fixture!r} (of test {item.name!r}) runs on "
                f"pytest-asyncio's {scope}-scoped loop but needs async task {task!r}, whose "
                f"values may be bound to the session loop (--flowrun-loop {MODE}): declare "
                '@pytest_asyncio.fixture(loop_scope="session"), or set '
                "asyncio_default_fixture_loop_scope = session in the ini file",
                pytrace=False,
            )

    def _fixture_off_the_loop(
        self, item: pytest.Item, names: Iterable[str]
    ) -> tuple[str, str, str] | None:
        """The first of ``item``'s async fixtures on another loop than the session loop
        that needs an async task: its name, its loop's scope and the task's name."""
        # pytest's only way to ask which definitions of a name a node sees (as _selection).
        manager: Any = item.session._fixturemanager
        for name in names:
            if name in self.async_tasks:
                continue
            for fixturedef in manager.getfixturedefs(name, item) or ():
                scope = _fixture_loop_scope(fixturedef, item.config)
                if scope is None or scope == SESSION:
                    continue
                task = task_below(manager, fixturedef, item, self.async_tasks)
                if task is not None:
                    return name, scope, task
        return None


def share_async_tasks(config: pytest.Config, async_tasks: Iterable[str]) -> None:
    """Tell this mode's checks (if registered) which task fixtures are async tasks."""
    checks = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if isinstance(checks, AsyncioSessionLoop):
        checks.async_tasks = frozenset(async_tasks)


def _test_loop_scope(item: pytest.Item) -> str:
    """The scope of the loop pytest-asyncio runs async test ``item`` on: its closest
    ``asyncio`` mark's ``loop_scope`` (or older ``scope``), else the ini default (as
    pytest-asyncio 1.x's private ``PytestAsyncioFunction._loop_scope`` reads it)."""
    marker = item.get_closest_marker("asyncio")
    kwargs = marker.kwargs if marker is not None else {}
    scope = kwargs.get("loop_scope") or kwargs.get("scope")
    return str(scope or item.config.getini("asyncio_default_test_loop_scope") or "function")


def _fixture_loop_scope(fixturedef: pytest.FixtureDef[Any], config: pytest.Config) -> str | None:
    """The scope of the loop pytest-asyncio runs ``fixturedef`` on, or ``None`` if it does
    not run it (a sync fixture; in strict mode, one not declared with
    ``pytest_asyncio.fixture``). Read as pytest-asyncio 1.x's private
    ``pytest_fixture_setup`` does: the ``_loop_scope`` its decorator sets, else the ini
    default (``fixture-scope``, 1.5: the fixture's scope), else the fixture's scope."""
    func = getattr(fixturedef.func, "__func__", fixturedef.func)
    if not getattr(func, "_force_asyncio_fixture", False):
        mode = config.getoption("asyncio_mode", None) or config.getini("asyncio_mode")
        if mode != "auto":
            return None
        if not (inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)):
            return None
    default = config.getini("asyncio_default_fixture_loop_scope")
    if default == "fixture-scope":
        default = fixturedef.scope
    return str(getattr(func, "_loop_scope", None) or default or fixturedef.scope)


def session_portal(portal: LoopPortal, mode: str, request: pytest.FixtureRequest) -> LoopPortal:
    """The portal the run uses: ``portal`` itself in ``thread`` mode, else a
    ``BorrowedLoopPortal`` over pytest-asyncio's session runner, requested now (so that it
    is torn down after the run). Raises ``RuntimeError`` if that fixture is not a runner."""
    if mode != MODE or isinstance(portal, BorrowedLoopPortal):
        return portal
    runner = request.getfixturevalue(RUNNER_FIXTURE)
    if not isinstance(runner, asyncio.Runner):
        raise RuntimeError(
            f"pytest-asyncio's {RUNNER_FIXTURE!r} is a {type(runner).__name__}, not an "
            f"asyncio.Runner: --flowrun-loop {MODE} does not support this pytest-asyncio; "
            "use --flowrun-loop thread"
        )
    borrowed = BorrowedLoopPortal("flowrun-session-loop", runner)
    borrowed.on_interrupt = portal.on_interrupt
    # Before the runner closes the loop, even if Ctrl-C stops the run's start midway.
    request.session.addfinalizer(borrowed.stop)
    return borrowed


def _version_tuple(text: str) -> tuple[int, ...]:
    """``"1.5.0"`` as ``(1, 5)``; the leading numbers only."""
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])
