"""The pytest plugin (loaded as ``-p flowrun``; off with ``-p no:flowrun``).

Read top to bottom, it follows a session: options, hook specs, task discovery as
pytest registers conftest modules, configuration, selection after collection, the
report header, each test's setup, the end of the session, the terminal summary and
unconfigure; the helpers the hooks share come last. All state lives in ``config.stash``;
at import, the one thing that happens is ``_imports.install`` (flowrun's modules are then
imported without pytest's assert rewriting), and a suite without tasks costs a scan of
its plugin modules' names and little else.

The top of the plugin's one-way layers: at import it loads only ``_imports``, ``_names``
and ``_options`` (none imports asyncio nor the runtime); the rest is imported when first
needed, and nothing imports this module back.
"""

from __future__ import annotations

import os
import types
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flowrun import _imports

_imports.install()  # before anything else of flowrun's is imported: see _imports

from pytest_flowrun._names import GENERATED_ATTRIBUTE, SPEC_ATTRIBUTE  # noqa: E402
from pytest_flowrun._options import ONCE_ENV, Settings, add_options, read_settings  # noqa: E402

if TYPE_CHECKING:
    from pytest_flowrun._session import SetupSession

_SETTINGS = pytest.StashKey[Settings]()
# Created when the first task is found: a suite without tasks never imports the runtime.
_SESSION = pytest.StashKey["SetupSession"]()
#: Module name prefixes that never hold the user's tasks.
_NOT_SCANNED = ("_pytest.", "pytest_flowrun", "pluggy", "flowrun.")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--flowrun-max-parallel``, ``--flowrun-timeout``, ``--flowrun-dag`` and
    ``--flowrun-report``, each with its ini twin."""
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Add ``pytest_flowrun_context``."""
    from pytest_flowrun import hooks

    pluginmanager.add_hookspecs(hooks)


@pytest.hookimpl(tryfirst=True)
def pytest_plugin_registered(
    plugin: object, plugin_name: str, manager: pytest.PytestPluginManager
) -> None:
    """Find the tasks of a conftest or plugin module before pytest parses its fixtures."""
    if not isinstance(plugin, types.ModuleType) or not _has_tasks(plugin):
        return
    config = manager.get_plugin("pytestconfig")
    if isinstance(config, pytest.Config):
        _session(config).discovery.scan(plugin, plugin_name or "", _value_of)


def pytest_configure(config: pytest.Config) -> None:
    """Validate the options; raises ``pytest.UsageError`` naming a bad one."""
    settings = config.stash[_SETTINGS] = read_settings(config)
    state = config.stash.get(_SESSION, None)
    if state is not None:
        state.settings = settings
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        from pytest_flowrun._xdist import XdistController

        config.pluginmanager.register(XdistController(settings), "flowrun-xdist")
        # Workers only with -n N > 0 and no --collect-only: then xdist's DSession runs.
        distributing = config.getoption("dist", "no") != "no"
        if settings.xdist == "once" and distributing and not config.getoption("collectonly"):
            from pytest_flowrun._once import OnceController, refuse_unsupported

            refuse_unsupported(config, settings)
            # Before xdist starts the workers: they must know it while loading conftests.
            os.environ[ONCE_ENV] = str(os.getpid())
            controller = OnceController(_session(config))
            config.pluginmanager.register(controller, "flowrun-xdist-once")
    elif hasattr(config, "workerinput"):  # a pytest-xdist worker
        from pytest_flowrun._xdist import XdistWorker

        worker = XdistWorker(config, lambda: config.stash.get(_SESSION, None))
        config.pluginmanager.register(worker, "flowrun-xdist-worker")
    if settings.loop == "asyncio-session":  # refused here without a recent pytest-asyncio
        from pytest_flowrun._borrowed_loop import AsyncioSessionLoop

        config.pluginmanager.register(AsyncioSessionLoop(config), "flowrun-asyncio-session")


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Validate the tasks and select those the selected tests need (nothing runs yet)."""
    state = session.config.stash.get(_SESSION, None)
    settings = session.config.stash.get(_SETTINGS, None)
    if settings is not None and settings.fixtures:  # flowrun_fixtures: make them tasks first
        from pytest_flowrun._promote import promote

        state = _session(session.config)
        promote(session, state.discovery, settings.fixtures, state.value_of)
    if state is not None:
        state.prepare(session)


def pytest_report_header(config: pytest.Config) -> str | None:
    """One line with the options, only when some were set."""
    settings = config.stash.get(_SETTINGS, None)
    if settings is None or not settings.explicit:
        return None
    timeout = "none" if settings.timeout_s is None else f"{settings.timeout_s:g}s"
    line = f"flowrun: max_parallel={settings.max_parallel}, timeout={timeout}"
    if settings.resources:
        line += ", resources=" + " ".join(f"{n}={c}" for n, c in settings.resources)
    if settings.fixtures:
        line += ", fixtures=" + " ".join(settings.fixtures)
    return line


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before each test: if a task raised ``pytest.exit`` or ``KeyboardInterrupt``, raise it
    here, so pytest ends the session as for a fixture that raised it."""
    state = item.config.stash.get(_SESSION, None)
    if state is not None:
        state.check_interrupt()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None]:
    """Note that a test is being torn down: the last one's teardown ends the run."""
    state = item.config.stash.get(_SESSION, None)
    if state is None:
        return (yield)
    state.in_test_teardown = True
    try:
        return (yield)
    finally:
        state.in_test_teardown = False


@pytest.hookimpl(tryfirst=True)
def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """Give every entry of the interrupt's traceback a line number before pytest prints
    it: Ctrl-C or SIGTERM between two instructions without one crashed pytest's report."""
    from pytest_flowrun._tracebacks import give_lines

    give_lines(excinfo.value)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Tear down what pytest's fixture finalizers did not, write the JSON report."""
    state = session.config.stash.get(_SESSION, None)
    if state is not None:
        state.session_finished(session)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The run's totals, failures and (with ``--flowrun-dag``) its per-task table."""
    state = terminalreporter.config.stash.get(_SESSION, None)
    if state is not None and state.report is not None:
        from pytest_flowrun._terminal import write_summary

        write_summary(terminalreporter, state.report, table=state.settings.show_dag)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the loop thread if a failure left it running."""
    if os.environ.get(ONCE_ENV) == str(os.getpid()):
        del os.environ[ONCE_ENV]
    state = config.stash.get(_SESSION, None)
    if state is not None:
        state.stop()


# -- helpers of the hooks above ---------------------------------------------------------


def _session(config: pytest.Config) -> SetupSession:
    """The session's ``SetupSession``, created (and the rest of the plugin imported) on
    first use."""
    try:
        return config.stash[_SESSION]
    except KeyError:
        from pytest_flowrun._session import SetupSession

        session = config.stash[_SESSION] = SetupSession(config)
        session.settings = config.stash.get(_SETTINGS, session.settings)
        return session


def _value_of(name: str, request: pytest.FixtureRequest) -> Any:
    """What every generated task fixture calls: the task's result from the session's run."""
    return _session(request.config).value_of(name, request)


def _has_tasks(module: types.ModuleType) -> bool:
    """Does ``module`` hold a task? Called for every plugin module, so cheap and import-free."""
    if (getattr(module, "__name__", None) or "").startswith(_NOT_SCANNED):
        return False
    for obj in list(vars(module).values()):
        try:
            if (
                getattr(obj, SPEC_ATTRIBUTE, None) is not None
                or getattr(obj, GENERATED_ATTRIBUTE, None) is not None
            ):
                return True
        except Exception:  # a hostile __getattr__: no task
            continue
    return False
