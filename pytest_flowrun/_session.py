"""One pytest session's setup run, from the first task fixture to the session's end.

``SetupSession`` holds the plugin's state for one ``pytest.Config``: the tasks found
(``_discovery``), those the selected tests need (``_selection``), and the run. The run
lives on a ``LoopPortal``'s event loop (``_portal``) for the whole session, so setup keeps
going while tests run; sync tasks run in the runtime's daemon thread pool. It starts when
pytest sets up the first task fixture a test needs, and is torn down by a session
finalizer registered at that moment: after everything that used the tasks, before the
session fixtures that the tasks used.

Imports the plugin's modules below it (never ``plugin``); the runtime inside functions.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flowrun._discovery import Discovery
from pytest_flowrun._durations import expected_durations, save_durations
from pytest_flowrun._names import DAG_NAME
from pytest_flowrun._options import Settings
from pytest_flowrun._portal import LoopPortal
from pytest_flowrun._report import (
    build_report,
    has_failures,
    teardown_failures,
    teardown_text,
    write_report,
)
from pytest_flowrun._selection import Selection, select

if TYPE_CHECKING:
    from flowrun.scheduler import ActiveRun, TaskFailedError
    from flowrun.state import StateStore


class _Phase(enum.Enum):
    """Where the session's setup run stands.

    It moves forward only, except that Ctrl-C during ``STARTING`` goes back to
    ``NOT_STARTED`` (the session is ending anyway).
    """

    NOT_STARTED = enum.auto()
    STARTING = enum.auto()
    START_FAILED = enum.auto()
    RUNNING = enum.auto()
    FINISHED = enum.auto()


class SetupSession:
    """The plugin's state for one ``pytest.Config`` (kept in ``config.stash``)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.settings = Settings()
        self.discovery = Discovery(config.rootpath)
        self.selection: Selection | None = None
        #: The run's report, once it is torn down (or interrupted while tearing down).
        self.report: dict[str, Any] | None = None
        self._phase = _Phase.NOT_STARTED
        self._run: ActiveRun | None = None
        self._store: StateStore | None = None
        self._start_error = ""
        self._portal = LoopPortal("flowrun-setup-loop")

    def prepare(self, session: pytest.Session) -> None:
        """Validate the tasks and work out which ones the selected tests need.

        Raises ``pytest.UsageError`` listing every problem (see ``_selection.select``).
        """
        self.selection = selection = select(session, self.discovery)
        if selection is not None and self.settings.show_dag:
            from pytest_flowrun._terminal import write_dag

            write_dag(self.config, selection.full, selection.selected, selection.excluded)

    def value_of(self, name: str, request: pytest.FixtureRequest) -> Any:
        """The body of every task fixture: start the run if needed, wait for ``name``."""
        from flowrun.scheduler import TaskFailedError

        run = self._ensure_run(name, request)
        if name not in run.dag.index:
            pytest.fail(
                f"flowrun: task {name!r} was requested after the setup run started, but no "
                "selected test asked for it at collection (request.getfixturevalue?); "
                "name it as a parameter of the test or of one of its fixtures",
                pytrace=False,
            )
        try:
            return self._portal.call(run.result(name))
        except TaskFailedError as exc:
            message = _failure_text(exc, run)
        # Outside the except block, so the report shows this line and no exception chain.
        pytest.fail(message, pytrace=False)

    def _ensure_run(self, name: str, request: pytest.FixtureRequest) -> ActiveRun:
        if self._run is not None:  # RUNNING or FINISHED
            return self._run
        if self._phase is _Phase.START_FAILED:
            pytest.fail(self._start_error, pytrace=False)
        if self._phase is _Phase.STARTING:
            pytest.fail(
                f"flowrun: task {name!r} was requested while the setup run was starting: a "
                "fixture that a task fixture uses depends on a task; make that fixture a task",
                pytrace=False,
            )
        self._phase = _Phase.STARTING
        try:
            self._run = run = self._start(name, request)
        except BaseException as exc:
            if isinstance(exc, (Exception, pytest.fail.Exception)):
                self._phase = _Phase.START_FAILED
                self._start_error = f"flowrun: the setup run could not start: {_one_line(exc)}"
            else:  # Ctrl-C
                self._phase = _Phase.NOT_STARTED
            raise
        self._phase = _Phase.RUNNING
        # pytest finalizes the session's fixtures in reverse order of setup. Registered
        # now, the teardown comes after every fixture set up from here on (the task
        # fixtures, and whatever uses them) and before those set up so far (the fixtures
        # the tasks use), also when Ctrl-C interrupts a setup.
        request.session.addfinalizer(self._finalize)
        return run

    def _start(self, name: str, request: pytest.FixtureRequest) -> ActiveRun:
        from flowrun.context import RunContext
        from flowrun.dag import build_dag
        from flowrun.scheduler import Scheduler, SchedulerConfig
        from flowrun.state import StateStore

        selection = self.selection
        if selection is None:
            raise RuntimeError("flowrun: a task fixture was set up before collection finished")
        if name not in selection.selected:  # asked for dynamically, before the run started
            self.selection = selection = selection.including(name)
        entries = self.discovery.entries
        specs = []
        for task_name in selection.selected:
            entry = entries[task_name]
            bound = {arg: request.getfixturevalue(arg) for arg in entry.fixture_args}
            specs.append(entry.spec_to_run(bound))
        dag = build_dag(DAG_NAME, specs)
        context = self.config.hook.pytest_flowrun_context(config=self.config)
        if context is None:
            needs = [s for s in dag.specs if s.context_arg is not None]
            if needs:
                pytest.fail(
                    f"flowrun: task {needs[0].name!r} takes a RunContext (parameter "
                    f"{needs[0].context_arg!r}) but no pytest_flowrun_context hook returned "
                    "one; implement pytest_flowrun_context(config) in a conftest.py",
                    pytrace=False,
                )
        elif not isinstance(context, RunContext):
            context = RunContext(context)
        store = StateStore(max_runs=None)
        scheduler = Scheduler(
            SchedulerConfig(
                max_parallel=self.settings.max_parallel,
                default_timeout_s=self.settings.timeout_s,
            ),
            state_store=store,
        )
        expected = expected_durations(self.config, selection.selected)
        self._store = store
        self._portal.start()

        async def start() -> ActiveRun:
            return scheduler.start(dag, context, expected_s=expected)

        return self._portal.call(start())

    def _finalize(self) -> None:
        self.finish_run(raise_errors=True)

    def finish_run(self, *, raise_errors: bool) -> None:
        """Cancel what still runs, tear down the generator tasks, keep the report.

        Does something once, and only after the run started. With ``raise_errors``, a
        failed teardown fails the caller (a fixture finalizer) with a short message.
        """
        run, store = self._run, self._store
        if self._phase is not _Phase.RUNNING or run is None or store is None:
            return
        self._phase = _Phase.FINISHED
        try:
            self._portal.call(run.finish(cancel=not run.done))
        except BaseException:
            self.report = build_report(store, run.run_id)
            raise  # a second Ctrl-C: leave the loop thread (a daemon) to the exit
        self._portal.stop()
        self.report = report = build_report(store, run.run_id)
        save_durations(self.config, report)
        if raise_errors:
            failed = teardown_failures(report)
            if failed:
                pytest.fail(
                    "flowrun: teardown failed: "
                    + "; ".join(f"task {name!r}: {teardown_text(t)}" for name, t in failed),
                    pytrace=False,
                )

    def session_finished(self, session: pytest.Session) -> None:
        """Tear down if no fixture finalizer did, write the report, set the exit status."""
        # An exception here is a second Ctrl-C: the loop thread, a daemon, is left to the exit.
        self.finish_run(raise_errors=False)
        self._portal.stop()
        if self.settings.report_path is not None and (self.discovery.entries or self.report):
            selection = self.selection
            write_report(
                self.config,
                self.settings,
                self.report,
                selection.selected if selection is not None else (),
                selection.excluded if selection is not None else (),
            )
        report = self.report
        if report is None:
            return
        if has_failures(report) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        worker_output = getattr(self.config, "workeroutput", None)
        if isinstance(worker_output, dict):  # a pytest-xdist worker: the controller prints it
            worker_output["flowrun_report"] = report

    def stop(self) -> None:
        """Last resort at unconfigure: ask the loop thread to stop, without waiting."""
        self._portal.abandon()


def _failure_text(exc: TaskFailedError, run: ActiveRun) -> str:
    """The one-line message that fails a test waiting for a task that did not succeed."""
    from flowrun.state import TaskStatus

    error = exc.error
    if exc.cause != exc.task:
        status = run.record(exc.cause).status
        what = f"task {exc.task!r} did not run because task {exc.cause!r} "
    else:
        status = exc.status
        what = f"task {exc.task!r} "
    if status is TaskStatus.TIMED_OUT and error is not None:
        what += "timed out: " + error.message.removeprefix(f"task {exc.cause!r}: ")
    elif status is TaskStatus.CANCELLED:
        what += "was cancelled"
    else:
        what += "failed" + (f": {error}" if error is not None else "")
    return f"flowrun: {what}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
