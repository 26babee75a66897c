"""One pytest session's setup run, from the first task fixture to the session's end.

``SetupSession`` holds the plugin's state for one ``pytest.Config``: the tasks found
(``_discovery``), those the selected tests need (``_selection``), and the run. The run
lives on a ``LoopPortal``'s event loop (``_portal``) for the whole session, so setup keeps
going while tests run; sync tasks run in the runtime's daemon thread pool. It starts when
pytest sets up the first task fixture a test needs, and is torn down by a session
finalizer registered at that moment: after everything that used the tasks, before the
session fixtures that the tasks used.

pytest's outcomes raised in a task end it as they would end a fixture: ``pytest.skip``
(and ``pytest.xfail``, which has no meaning for setup) skips the task, its dependants and
the tests needing them; ``pytest.exit`` and ``KeyboardInterrupt`` stop the run and are
raised on the main thread, where pytest ends the session for them; anything else, such as
``pytest.fail`` or ``sys.exit``, fails the task. While the run is active, SIGTERM is
handled like Ctrl-C (``_signals``).

Under ``--flowrun-xdist once`` the run is the controller's: ``_once`` starts it for the
workers and this session ``adopt``s it (teardown, report, summary as above), while a
worker's task fixtures ask the controller through ``_remote`` and run nothing.

Imports the plugin's modules below it (never ``plugin``); the runtime inside functions.
Those a session may not need are imported where it turns out to need them:
``_borrowed_loop`` in ``--flowrun-loop asyncio-session`` mode, ``_progress`` where a live
display can show (not on a pytest-xdist worker), ``_remote`` on a worker in ``once``
mode, ``_terminal``'s DAG with ``--flowrun-dag``; always on the main thread before the
run starts (``_signals.import_what_the_run_needs`` says why).
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flowrun._discovery import Discovery
from pytest_flowrun._durations import save_durations
from pytest_flowrun._dynamic import not_in_run, requested_tasks
from pytest_flowrun._interop import register_interop, task_failed, waiting_note
from pytest_flowrun._launch import plan_run
from pytest_flowrun._options import Settings, serves_once
from pytest_flowrun._outcomes import exit_status, not_served, raise_on_main, start_failed_text
from pytest_flowrun._portal import LoopPortal
from pytest_flowrun._report import (
    build_report,
    has_failures,
    teardown_failures,
    teardown_text,
    write_report,
)
from pytest_flowrun._selection import Selection, check_resources, select
from pytest_flowrun._signals import Signals, import_what_the_run_needs
from pytest_flowrun._summary import write_session_summary

if TYPE_CHECKING:
    from flowrun.scheduler import ActiveRun
    from flowrun.state import StateStore
    from pytest_flowrun._progress import Progress
    from pytest_flowrun._remote import RemoteSetup


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
        self.discovery = Discovery(config.rootpath, remote=serves_once(config))
        #: On a pytest-xdist worker in ``once`` mode: the controller, which runs the setup.
        self.remote: RemoteSetup | None = None
        self.selection: Selection | None = None
        #: The run's report, once it is torn down (or interrupted while tearing down).
        self.report: dict[str, Any] | None = None
        self._phase = _Phase.NOT_STARTED
        self._run: ActiveRun | None = None
        self._store: StateStore | None = None
        self._start_error = ""
        self._portal = LoopPortal("flowrun-setup-loop")
        self._portal.on_interrupt = self._main_interrupted
        self._progress: Progress | None = None  # made at the first wait (_live_progress)
        self._signals = Signals(self._halt)
        #: Set once the run's interrupt was raised on the main thread (pytest has it).
        self._interrupt_raised = False
        #: True while pytest tears a test down (``pytest_runtest_teardown``).
        self.in_test_teardown = False

    def prepare(self, session: pytest.Session) -> None:
        """Validate the tasks and work out which ones the selected tests need.

        Raises ``pytest.UsageError`` listing every problem (see ``_selection.select``).
        """
        self.selection = selection = select(session, self.discovery)
        if self.discovery.remote:
            from pytest_flowrun._remote import RemoteSetup

            self.remote = RemoteSetup(self.config)
            if selection is not None:  # the controller refuses a task it does not know
                known = self.discovery.entries
                self.remote.check(
                    selection.selected, {n: known[n].origin for n in selection.selected}
                )
        if selection is not None:
            register_interop(self.config, lambda: self._run)
        if selection is not None and self.settings.loop == "asyncio-session":
            from pytest_flowrun._borrowed_loop import share_async_tasks

            entries = self.discovery.entries.items()
            share_async_tasks(self.config, (n for n, e in entries if e.spec.kind.is_async))
        if selection is not None:
            check_resources(selection, dict(self.settings.resources))
        if selection is not None and self.settings.show_dag:
            from pytest_flowrun._terminal import write_dag

            write_dag(
                self.config,
                selection.full,
                selection.selected,
                selection.excluded,
                dict(self.settings.resources),
            )

    def value_of(self, name: str, request: pytest.FixtureRequest) -> Any:
        """The body of every task fixture: start the run if needed, wait for ``name``."""
        from flowrun.scheduler import TaskFailedError

        if self.remote is not None:  # --flowrun-xdist once, on a worker
            return self.remote.value_of(name)
        if self._progress is None:  # before the run starts: it may import _progress
            self._progress = _live_progress(self.config)
        run = self._ensure_run(name, request)
        if name not in run.dag.index:
            pytest.fail(not_in_run(name), pytrace=False)
        self._portal.check_requester(name, run.dag.specs[run.dag.index[name]].kind.is_async)
        try:
            with _waiting(self._progress, request.node.name, name, run) as tick:
                return self._portal.call(run.result(name), check=self.check_interrupt, tick=tick)
        except TaskFailedError as exc:
            failed = exc.cause
            skipped, message = not_served(exc, run)
        except pytest.fail.Exception as exc:  # pytest-timeout's signal method, for one
            exc.add_note(waiting_note(name, run))
            raise
        # Outside the except block, so the report shows this line and no exception chain.
        self.check_interrupt()  # a task stopped the run: that, not this task, ends the test
        if skipped:
            pytest.skip(message)
        raise task_failed(message, failed)

    def check_interrupt(self) -> None:
        """Raise on the main thread the interrupt that a task raised, if one did.

        ``pytest.exit`` in a task becomes a ``pytest.exit`` here, with its return code, and
        ``KeyboardInterrupt`` a ``KeyboardInterrupt``: pytest ends the session for them as
        if a fixture had raised them. Called while a test waits for a task, before each
        test, and when the run ends; raises once.
        """
        run = self._run
        if run is None or run.interrupt is None or self._interrupt_raised:
            return
        self._interrupt_raised = True
        raise_on_main(run.interrupt, run)

    @property
    def portal(self) -> LoopPortal:
        """The loop the run lives on (the xdist controller serves its workers there too)."""
        return self._portal

    def install_signals(self) -> None:
        """Handle SIGTERM like Ctrl-C from now on (main thread only), for a run that may
        start from another thread: the xdist controller's in ``once`` mode."""
        self._signals.install()

    def adopt(self, run: ActiveRun, store: StateStore, session: pytest.Session) -> None:
        """Take ``run``, started for the xdist workers by the controller (``_once``), as this
        session's: torn down by a session finalizer registered now, after the fixtures
        it uses were set up."""
        self._run, self._store = run, store
        self._phase = _Phase.RUNNING
        session.addfinalizer(self._finalize)

    def _main_interrupted(self, exc: BaseException) -> None:
        """The main thread stopped waiting for the loop because of ``exc``: if it ends the
        session (Ctrl-C, ``pytest.exit``), no new task attempt starts from now on."""
        if not isinstance(exc, Exception) or isinstance(exc, pytest.exit.Exception):
            self._halt()

    def _halt(self) -> None:
        """Start no new attempt; safe from a signal handler (it only sets a flag)."""
        run = self._run
        if run is not None:
            run.halt()

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
        # Before the run starts: a SIGTERM from here on is a Ctrl-C.
        self._signals.install()
        try:
            run = self._start(name, request)
        except BaseException as exc:
            if isinstance(exc, (Exception, pytest.fail.Exception)):
                self._signals.restore()
                self._phase = _Phase.START_FAILED
                self._start_error = start_failed_text(exc)
            elif not self._started_anyway():  # Ctrl-C before the run started
                self._signals.restore()
                self._phase = _Phase.NOT_STARTED
            else:  # Ctrl-C as it started: torn down with the session, as below
                self._phase = _Phase.RUNNING
                request.session.addfinalizer(self._finalize)
            raise
        self._phase = _Phase.RUNNING
        # pytest finalizes the session's fixtures in reverse order of setup. Registered
        # now, the teardown comes after every fixture set up from here on (the task
        # fixtures, and whatever uses them) and before those set up so far (the fixtures
        # the tasks use), also when Ctrl-C interrupts a setup.
        request.session.addfinalizer(self._finalize)
        return run

    def _start(self, name: str, request: pytest.FixtureRequest) -> ActiveRun:
        selection = self.selection
        if selection is None:
            raise RuntimeError("flowrun: a task fixture was set up before collection finished")
        for wanted in (name, *requested_tasks(request, self.discovery.entries)):
            if wanted not in selection.selected:  # asked for dynamically (_dynamic)
                self.selection = selection = selection.including(wanted)
        plan = plan_run(
            self.config, self.settings, selection, self.discovery.entries, request.getfixturevalue
        )
        import_what_the_run_needs()
        self._store = plan.store
        if self.settings.loop == "asyncio-session":  # its runner is set up before _finalize
            from pytest_flowrun._borrowed_loop import session_portal

            self._portal = session_portal(self._portal, self.settings.loop, request)
        self._portal.start()

        async def start() -> ActiveRun:
            # Kept from the loop thread: a Ctrl-C that interrupts the wait for this
            # coroutine may come after it ran (see _started_anyway).
            self._run = run = plan.start()
            return run

        return self._portal.call(start())

    def _started_anyway(self) -> bool:
        """After Ctrl-C interrupted ``_start``: did the run start all the same?

        The start coroutine either ran before the interrupt's cancellation reached the loop
        or never will: a no-op sent to the loop after both settles which (the loop runs
        its callbacks in order). A second Ctrl-C meanwhile gives up.
        """
        if self._run is None and self._portal.running:

            async def settled() -> None:
                return None

            try:
                self._portal.call(settled())
            except BaseException:
                return self._run is not None
        return self._run is not None

    def _finalize(self) -> None:
        # In a test's teardown (the last test's), an error is that test's teardown error;
        # pytest calls session finalizers from pytest_sessionfinish too (after Ctrl-C,
        # -x, pytest.exit), where an error would crash pytest: the summary reports it.
        self.finish_run(raise_errors=self.in_test_teardown)

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
            # Not done: pytest stops early (Ctrl-C, SIGTERM, -x, a task's interrupt).
            self._portal.call(run.finish(cancel=not run.done))
        except BaseException as exc:
            if exc is not run.interrupt:
                self.report = build_report(store, run.run_id)
                self._signals.restore()
                raise  # a second Ctrl-C: leave the loop thread (a daemon) to the exit
        self._signals.restore()
        self._portal.stop()
        self.report = report = build_report(store, run.run_id)
        save_durations(self.config, report)
        if raise_errors:
            self.check_interrupt()
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
        if self.remote is not None:  # the controller runs, reports and tears down
            self.remote.close()
            return
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
        if self.discovery.entries or self.report:
            write_session_summary(self.config, self.settings, self.report)
        report = self.report
        if report is None:
            return
        run = self._run
        interrupt = run.interrupt if run is not None else None
        if interrupt is not None and not self._interrupt_raised:
            # The run ended after the last test: pytest never saw the task's interrupt.
            self._interrupt_raised = True
            session.exitstatus = exit_status(interrupt)
        elif (
            interrupt is None and has_failures(report) and session.exitstatus == pytest.ExitCode.OK
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        worker_output = getattr(self.config, "workeroutput", None)
        if isinstance(worker_output, dict):  # a pytest-xdist worker: the controller prints it
            worker_output["flowrun_report"] = report

    def stop(self) -> None:
        """Last resort at unconfigure: ask the loop thread to stop, without waiting."""
        self._signals.restore()
        self._portal.abandon()


def _live_progress(config: pytest.Config) -> Progress | None:
    """The session's live progress display; None where it would show nothing (a
    pytest-xdist worker, a session without pytest's terminal reporter), and then
    ``_progress`` is not imported."""
    if config.pluginmanager.get_plugin("terminalreporter") is None:
        return None
    if hasattr(config, "workerinput"):
        return None
    from pytest_flowrun._progress import Progress

    return Progress(config)


def _waiting(
    progress: Progress | None, test: str, task: str, run: ActiveRun
) -> contextlib.AbstractContextManager[Callable[[float], None] | None]:
    """``progress.waiting(test, task, run)``; without a display, a wait that shows nothing."""
    if progress is None:
        return contextlib.nullcontext()
    return progress.waiting(test, task, run)
