"""One pytest session's setup run: selection, the event-loop thread, waiting, teardown.

The run lives on one asyncio loop in a daemon thread for the whole session, so setup
keeps going while tests run; sync tasks run in the runtime's daemon thread pool. The
main thread only ever waits on futures, in short slices, so Ctrl-C interrupts it. The
run starts when pytest sets up the first task fixture a test needs, and is torn down
by a session finalizer registered at that moment: after everything that used the
tasks, before the session fixtures that the tasks used.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flowrun._discovery import Discovery, TaskEntry
from pytest_flowrun._names import DAG_NAME, DURATIONS_KEY, GENERATED_ATTRIBUTE
from pytest_flowrun._options import Settings
from pytest_flowrun._portal import LoopPortal

if TYPE_CHECKING:
    from flowrun.dag import Dag
    from flowrun.scheduler import ActiveRun, TaskFailedError
    from flowrun.state import StateStore


class SetupSession:
    """The plugin's state for one ``pytest.Config`` (kept in ``config.stash``)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.settings = Settings()
        self.discovery = Discovery(config.rootpath)
        self.selected: tuple[str, ...] = ()
        self.excluded: tuple[str, ...] = ()
        self.report: dict[str, Any] | None = None
        self._full: Dag | None = None
        self._run: ActiveRun | None = None
        self._store: StateStore | None = None
        self._portal = LoopPortal("flowrun-setup-loop")
        self._start_error: str | None = None
        self._starting = False
        self._finished = False

    # -- collection ---------------------------------------------------------------------

    def prepare(self, session: pytest.Session) -> None:
        """Validate the tasks and work out which ones the selected tests need.

        Raises ``pytest.UsageError`` listing every problem: a bad declaration, a bad
        DAG, a name shared by a task and another fixture, a task fixture asking for a
        fixture narrower than the session.
        """
        entries = self.discovery.entries
        errors = list(self.discovery.errors)
        if not entries:
            if errors:
                raise pytest.UsageError(_problems(errors))
            return
        from flowrun.dag import build_dag
        from flowrun.errors import FlowrunError

        for entry in entries.values():
            spec = entry.spec
            task_args = tuple(r for r in spec.requires if r in entries)
            entry.fixture_args = tuple(r for r in spec.requires if r not in entries)
            entry.deps = spec.deps + tuple(r for r in task_args if r not in spec.deps)
            entry.parent_args = spec.parent_args + tuple(
                r for r in task_args if r not in spec.parent_args
            )
        try:
            self._full = build_dag(
                DAG_NAME,
                [
                    replace(e.spec, deps=e.deps, parent_args=e.parent_args, requires=())
                    for e in entries.values()
                ],
            )
        except FlowrunError as exc:
            errors.append(str(exc))
        if errors or self._full is None:
            raise pytest.UsageError(_problems(errors))
        full = self._full
        direct = self._select(session, full, errors)
        if errors:
            raise pytest.UsageError(_problems(errors))
        if direct:
            keep = full.ancestors(direct)
            self.selected = tuple(n for n in full.names if n in keep)
        self.excluded = tuple(n for n in full.names if n not in self.selected)
        if self.settings.show_dag:
            from pytest_flowrun._terminal import write_dag

            write_dag(self.config, full, self.selected, self.excluded)

    def _select(
        self, session: pytest.Session, full: Dag, errors: list[str]
    ) -> dict[str, pytest.Item]:
        """The tasks the selected items ask for, each with the first item asking."""
        entries = self.discovery.entries
        # The fixture manager is pytest's only way to ask which definitions of a name a
        # node sees (getfixturedefs has kept its signature since pytest 8).
        manager = session._fixturemanager
        direct: dict[str, pytest.Item] = {}
        seen: set[tuple[str, int]] = set()
        reported: set[int] = set()
        for item in session.items:
            names = getattr(item, "fixturenames", None)
            if not names:
                continue
            for name in names:
                entry = entries.get(name)
                if entry is None:
                    continue
                direct.setdefault(name, item)
                key = (name, id(item.parent))
                if key in seen:
                    continue
                seen.add(key)
                for fixturedef in manager.getfixturedefs(name, item) or ():
                    if getattr(fixturedef.func, GENERATED_ATTRIBUTE, False):
                        continue
                    if id(fixturedef) not in reported:
                        reported.add(id(fixturedef))
                        where = self.discovery.origin_of(fixturedef.func)
                        errors.append(
                            f"task {name!r} ({entry.origin}) and fixture {name!r} ({where}) "
                            "have the same name; rename one of them"
                        )
        if not direct:
            return direct
        # The first test that needs a task starts the run, and the fixtures every task
        # uses are resolved from there.
        first = next(iter(direct.values()))
        for name in full.ancestors(direct):
            entry = entries[name]
            item = direct.get(name, first)
            for arg in entry.fixture_args:
                problems = self._check_argument(manager, entry, arg, item)
                if not problems and not manager.getfixturedefs(arg, first):
                    problems = [
                        f"task fixture {name!r} ({entry.origin}) uses fixture {arg!r}, which "
                        f"{first.nodeid!r} cannot see; the first test needing setup starts the "
                        f"whole run, so define {arg!r} where every such test sees it"
                    ]
                errors.extend(problems)
        return direct

    def _check_argument(
        self, manager: Any, entry: TaskEntry, arg: str, item: pytest.Item
    ) -> list[str]:
        what = f"task fixture {entry.spec.name!r} ({entry.origin})"
        fixturedefs = manager.getfixturedefs(arg, item)
        if not fixturedefs:
            return [
                f"{what} takes parameter {arg!r}, which is neither a task nor a fixture "
                f"visible to {item.nodeid!r}"
            ]
        fixturedef = fixturedefs[-1]
        if fixturedef.scope != "session":
            where = self.discovery.origin_of(fixturedef.func)
            return [
                f"{what} uses fixture {arg!r} ({where}), which has {fixturedef.scope!r} "
                "scope; a task runs once per session, so it can only use session-scoped "
                "fixtures"
            ]
        task = self._task_below(manager, fixturedef, item)
        if task is not None:
            return [
                f"{what} uses fixture {arg!r}, which needs task {task!r}; the fixtures a task "
                f"uses are set up before the run starts: make {arg!r} a task"
            ]
        return []

    def _task_below(
        self, manager: Any, fixturedef: pytest.FixtureDef[Any], item: pytest.Item
    ) -> str | None:
        """The first task that ``fixturedef`` needs, directly or through other fixtures."""
        entries = self.discovery.entries
        seen: set[str] = set()
        stack: list[str] = list(fixturedef.argnames)
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in entries:
                return name
            for other in manager.getfixturedefs(name, item) or ():
                stack.extend(other.argnames)
        return None

    # -- running ------------------------------------------------------------------------

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
            message = self._failure_text(exc)
        # Outside the except block, so the report shows this line and no exception chain.
        pytest.fail(message, pytrace=False)

    def _ensure_run(self, name: str, request: pytest.FixtureRequest) -> ActiveRun:
        if self._run is not None:
            return self._run
        if self._start_error is not None:
            pytest.fail(self._start_error, pytrace=False)
        if self._starting:
            pytest.fail(
                f"flowrun: task {name!r} was requested while the setup run was starting: a "
                "fixture that a task fixture uses depends on a task; make that fixture a task",
                pytrace=False,
            )
        self._starting = True
        try:
            self._run = run = self._start(name, request)
        except BaseException as exc:
            if isinstance(exc, (Exception, pytest.fail.Exception)):
                self._start_error = f"flowrun: the setup run could not start: {_one_line(exc)}"
            raise
        finally:
            self._starting = False
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

        full = self._full
        if full is None:
            raise RuntimeError("flowrun: a task fixture was set up before collection finished")
        if name not in self.selected:  # asked for dynamically, before the run started
            keep = full.ancestors([*self.selected, name])
            self.selected = tuple(n for n in full.names if n in keep)
            self.excluded = tuple(n for n in full.names if n not in keep)
        entries = self.discovery.entries
        specs = []
        for task_name in self.selected:
            entry = entries[task_name]
            bound = {arg: request.getfixturevalue(arg) for arg in entry.fixture_args}
            specs.append(
                replace(
                    entry.spec,
                    deps=entry.deps,
                    parent_args=entry.parent_args,
                    bound=bound,
                    requires=(),
                )
            )
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
        expected = self._expected_durations()
        self._store = store
        self._portal.start()

        async def start() -> ActiveRun:
            return scheduler.start(dag, context, expected_s=expected)

        return self._portal.call(start())

    def _finalize(self) -> None:
        self.finish_run(raise_errors=True)

    def finish_run(self, *, raise_errors: bool) -> None:
        """Cancel what still runs, tear down the generator tasks, keep the report.

        With ``raise_errors``, a failed teardown fails the caller (a fixture finalizer)
        with a short message.
        """
        run, store = self._run, self._store
        if run is None or store is None or self._finished:
            return
        self._finished = True

        try:
            self._portal.call(run.finish(cancel=not run.done))
        except BaseException:
            self.report = _build_report(store, run.run_id)
            raise  # a second Ctrl-C: leave the loop thread (a daemon) to the exit
        self._portal.stop()
        self.report = report = _build_report(store, run.run_id)
        self._save_durations(report)
        if raise_errors:
            failed = _teardown_failures(report)
            if failed:
                pytest.fail(
                    "flowrun: teardown failed: " + "; ".join(f"task {n!r}: {m}" for n, m in failed),
                    pytrace=False,
                )

    def session_finished(self, session: pytest.Session) -> None:
        """Tear down if no fixture finalizer did, write the report, set the exit status."""
        # An exception here is a second Ctrl-C: the loop thread, a daemon, is left to the exit.
        self.finish_run(raise_errors=False)
        self._portal.stop()
        if self.settings.report_path is not None and (self.discovery.entries or self.report):
            self._write_report()
        report = self.report
        if report is None:
            return
        from pytest_flowrun._terminal import has_failures

        if has_failures(report) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        worker_output = getattr(self.config, "workeroutput", None)
        if isinstance(worker_output, dict):  # a pytest-xdist worker: the controller prints it
            worker_output["flowrun_report"] = report

    def stop(self) -> None:
        """Last resort at unconfigure: ask the loop thread to stop, without waiting."""
        self._portal.abandon()

    # -- reporting ----------------------------------------------------------------------

    def _failure_text(self, exc: TaskFailedError) -> str:
        from flowrun.state import TaskStatus

        error = exc.error
        if exc.cause != exc.task:
            run = self._run
            status = run.record(exc.cause).status if run is not None else exc.status
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

    def _expected_durations(self) -> dict[str, float]:
        cache = getattr(self.config, "cache", None)
        if cache is None:
            return {}
        stored = cache.get(DURATIONS_KEY, {})
        if not isinstance(stored, dict):
            return {}
        return {
            name: float(value)
            for name, value in stored.items()
            if name in self.selected and isinstance(value, (int, float)) and value >= 0
        }

    def _save_durations(self, report: dict[str, Any]) -> None:
        cache = getattr(self.config, "cache", None)
        if cache is None:
            return
        stored = cache.get(DURATIONS_KEY, {})
        durations = dict(stored) if isinstance(stored, dict) else {}
        for name, task in report["tasks"].items():
            if task["status"] == "SUCCESS" and task["duration_s"] is not None:
                durations[name] = round(task["duration_s"], 6)
        cache.set(DURATIONS_KEY, durations)

    def _write_report(self) -> None:
        path = self.settings.report_path
        if path is None:
            return
        report = dict(self.report) if self.report is not None else _empty_report()
        report["selected"] = list(self.selected)
        report["excluded"] = list(self.excluded)
        report["max_parallel"] = self.settings.max_parallel
        report["default_timeout_s"] = self.settings.timeout_s
        # Each pytest-xdist worker runs its own setup: one report per worker.
        worker = getattr(self.config, "workerinput", {}).get("workerid")
        if worker:
            path = path.with_name(f"{path.stem}.{worker}{path.suffix}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise pytest.UsageError(
                f"flowrun: cannot write the report to {str(path)!r} (--flowrun-report / "
                f"flowrun_report): {exc.strerror or exc}"
            ) from None


def _build_report(store: StateStore, run_id: str) -> dict[str, Any]:
    from flowrun._report import build_report

    return build_report(store.get(run_id))


def _empty_report() -> dict[str, Any]:
    return {
        "status": "NOT_STARTED",
        "setup_span_s": 0.0,
        "serial_s": 0.0,
        "critical_path": [],
        "critical_path_s": 0.0,
        "counts": {},
        "tasks": {},
    }


def _teardown_failures(report: dict[str, Any]) -> list[tuple[str, str]]:
    failed = []
    for name, task in report["tasks"].items():
        teardown = task.get("teardown")
        if teardown is not None and teardown["status"] != "SUCCESS":
            error = teardown["error"]
            message = f"{error['type']}: {error['message']}" if error else teardown["status"]
            failed.append((name, message))
    return failed


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _problems(errors: list[str]) -> str:
    if len(errors) == 1:
        return f"flowrun: {errors[0]}"
    return "flowrun found problems in the setup tasks:\n" + "\n".join(f"  - {e}" for e in errors)
