"""How the setup run shows through pytest's own flags and the plugins a suite commonly uses.

A test waits for its tasks inside a fixture, so whatever pytest reports about fixtures
sees the wait, not the task. Each part below fixes one view, and is registered by
``register_interop`` once collection is over, only if its flag or plugin is in use:

* ``_JunitTracebacks`` (``--junitxml``): the error of the first test that needed a failed
  task carries the task's traceback, once per task. The terminal still shows the one
  line; ``str()`` of the report, which junitxml writes into ``<error>``, has both.
* ``_NoPointlessReruns`` (pytest-rerunfailures): a test erroring because its task
  failed is not re-run, since the task is never re-run (``@task(retries=N)`` is how a
  task gets another attempt).
* ``_SetupShowTimes`` (``--setup-show``): each task fixture's ``SETUP`` line gets the
  span in which its task really ran, which may be long before the test it is shown at.
* ``_DurationsPointer`` (``--durations``): a line saying that a test's setup time is its
  wait for the tasks, and where the per-task durations are.

``task_failed`` makes what a test needing a failed task raises; ``waiting_note`` names
what a test was waiting for when something else (pytest-timeout) failed the wait.

Imports the plugin's ``_terminal``; the runtime only for type checking.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flowrun._terminal import user_traceback

if TYPE_CHECKING:
    from flowrun.scheduler import ActiveRun


#: Set on the ``pytest.fail`` exception of a test needing a failed task, to that task.
_TASK_ATTRIBUTE = "flowrun_task"


def task_failed(message: str, task: str) -> BaseException:
    """What a test's setup raises when a task it needs did not succeed: ``pytest.fail``'s
    exception without a Python traceback, carrying ``task`` (the task that failed: the
    one asked for, or the ancestor that kept it from running) for the parts below."""
    exc = pytest.fail.Exception(message, pytrace=False)
    setattr(exc, _TASK_ATTRIBUTE, task)
    return exc


def waiting_note(name: str, run: ActiveRun) -> str:
    """``flowrun: the test was waiting for task 'api' (PENDING; running: 'db')``."""
    from flowrun.state import TaskStatus

    running = [
        n
        for n in run.dag.names
        if n != name
        and n in run.dag.ancestors([name])
        and run.record(n).status is TaskStatus.RUNNING
    ]
    status = run.record(name).status
    also = f"; running: {', '.join(repr(n) for n in running)}" if running else ""
    return f"flowrun: the test was waiting for task {name!r} ({status}{also})"


def register_interop(config: pytest.Config, run: Callable[[], ActiveRun | None]) -> None:
    """Register the parts that the session's flags and plugins call for (see above);
    ``run`` gives the setup run once it has started. Called once per session."""
    manager = config.pluginmanager
    option = config.option
    if getattr(option, "xmlpath", None):
        manager.register(_JunitTracebacks(run), "flowrun-junit")
    if manager.hasplugin("rerunfailures"):
        manager.register(_NoPointlessReruns(), "flowrun-reruns")
    if getattr(option, "setupshow", False):
        manager.register(_SetupShowTimes(config, run), "flowrun-setup-show")
    if getattr(option, "durations", None) is not None:
        manager.register(_DurationsPointer(), "flowrun-durations")


def _failed_task(call: pytest.CallInfo[None]) -> str | None:
    """The task that failed the setup ``call``, if one did."""
    excinfo = call.excinfo
    if call.when != "setup" or excinfo is None:
        return None
    task = getattr(excinfo.value, _TASK_ATTRIBUTE, None)
    return task if isinstance(task, str) else None


class _JunitTracebacks:
    """``--junitxml``: the task's traceback in the ``<error>`` of the first test needing it."""

    def __init__(self, run: Callable[[], ActiveRun | None]) -> None:
        self._run = run
        self._attached: set[str] = set()

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        task, run = _failed_task(call), self._run()
        if task is None or run is None or task in self._attached or not report.failed:
            return report
        error = run.record(task).error
        if error is not None and error.traceback:
            self._attached.add(task)
            text = "\n".join(user_traceback(error.traceback))
            report.longrepr = _TaskError(str(report.longrepr), task, text)  # type: ignore[assignment]
        return report


class _Crash:
    """What junitxml and the short summary read of a ``longrepr.reprcrash``: the message."""

    # Not a dataclass: making one costs about a millisecond at every pytest start.
    __slots__ = ("lineno", "message", "path")

    def __init__(self, path: str, lineno: int, message: str) -> None:
        self.path = path
        self.lineno = lineno
        self.message = message


class _TaskError:
    """A test's error for a failed task: one line on the terminal; ``str()`` (junitxml's
    text, and what pytest-xdist sends) adds the task's traceback."""

    def __init__(self, line: str, task: str, traceback: str) -> None:
        self.line = line
        self.reprcrash = _Crash("", 0, line)
        self._text = f"{line}\n\ntraceback of task {task!r}:\n{traceback}"

    def toterminal(self, tw: Any) -> None:
        tw.line(self.line)

    def __str__(self) -> str:
        return self._text


class _NoPointlessReruns:
    """pytest-rerunfailures: no re-run of a test whose task failed (the task would not run
    again, so the test would only error again)."""

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        # pytest-rerunfailures keeps, per phase, whether an error rules a re-run out (as
        # --rerun-except does) in this private dict; its makereport, inside ours, made it.
        terminal = getattr(item, "_terminal_errors", None)
        if report.failed and _failed_task(call) is not None and isinstance(terminal, dict):
            terminal[call.when] = True
        return report


class _SetupShowTimes:
    """``--setup-show``: when each task really ran, after its fixture's ``SETUP`` line."""

    def __init__(self, config: pytest.Config, run: Callable[[], ActiveRun | None]) -> None:
        self._config = config
        self._run = run

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, object, object]:
        try:
            return (yield)
        finally:
            run = self._run()
            if run is not None and fixturedef.argname in run.dag.index:
                self._write(_when(run, fixturedef.argname))

    def _write(self, text: str) -> None:
        capman = self._config.pluginmanager.getplugin("capturemanager")
        if capman is not None:
            capman.suspend_global_capture()
        try:
            writer = self._config.get_terminal_writer()
            writer.write(f" {text}")
            writer.flush()
        finally:
            if capman is not None:
                capman.resume_global_capture()


def _when(run: ActiveRun, name: str) -> str:
    """``[flowrun: SUCCESS, ran 0.00s-0.31s into the run]``: seconds since the first task
    became ready, as in the ``--flowrun-dag`` table."""
    record = run.record(name)
    start, end = record.started_at, record.finished_at
    readies = [run.record(n).ready_at for n in run.dag.names]
    origin = min((t for t in readies if t is not None), default=None)
    if start is None or end is None or origin is None:
        return f"[flowrun: {record.status}]"
    return f"[flowrun: {record.status}, ran {start - origin:.2f}s-{end - origin:.2f}s into the run]"


class _DurationsPointer:
    """``--durations``: where the tasks' own durations are."""

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.write_line(
            "flowrun: in --durations, a test's setup time is how long it waited for its "
            "tasks, which ran concurrently; each task's own duration is in the flowrun "
            "table (--flowrun-dag)"
        )
