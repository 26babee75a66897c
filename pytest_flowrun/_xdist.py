"""The pytest-xdist integration, registered on a controller only when xdist is present.

In ``per-worker`` mode (the default), each worker runs the setup its own tests need and
sends its report back in ``workeroutput``; ``XdistController`` prints each worker's
summary and fails the session for a failed task, as without xdist. (In ``once`` mode the
controller runs the setup itself: ``_once``.)

The controller does not collect, so what needs a collection happens on the workers and
comes back in ``workeroutput`` for the controller to print once (``XdistWorker``):

* a **usage error** of the selection (a missing dependency, a cycle, a bad declaration):
  left to escape, it reached xdist as a worker that finished with tests still scheduled
  (``assert not crashitem``, an INTERNALERROR, exit 3) and its message stayed in the
  worker. The worker now stores the message and sets ``session.shouldfail``, which xdist
  reads as "stop the session", not as a crash; the controller turns the stop into a
  ``pytest.UsageError`` with each distinct message once: ``ERROR: ...`` on stderr, exit 4,
  as without xdist. The controller does not validate before the workers start: it loads
  only the initial conftests, so it cannot tell a dependency declared in a nested
  conftest from a missing one, and the item checks need a collection.
* the **DAG** of ``--flowrun-dag``: each worker sends the lines, the controller prints
  them in its summary, once when the workers agree (they collect the same tests), else
  once per worker.

Imports the plugin's ``_options`` and ``_report``; ``_terminal`` and ``_summary`` inside
functions, when there is something to print or write.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flowrun._options import Settings
from pytest_flowrun._report import has_failures

if TYPE_CHECKING:
    from pytest_flowrun._session import SetupSession

#: ``workeroutput`` keys: the worker's usage error, and its ``--flowrun-dag`` lines.
_USAGE_ERROR = "flowrun_usage_error"
_DAG = "flowrun_dag"


class XdistWorker:
    """Registered on a pytest-xdist worker only: sends the controller what the worker's
    collection found that the controller must print, a usage error or the DAG."""

    def __init__(self, config: pytest.Config, state: Callable[[], SetupSession | None]) -> None:
        self.config = config
        self.state = state

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_finish(self, session: pytest.Session) -> Generator[None, None, None]:
        """Around the plugin's selection: keep its usage error or its DAG for the controller."""
        output: dict[str, Any] = getattr(self.config, "workeroutput", {})
        try:
            yield
        except pytest.UsageError as exc:
            message = "\n".join(str(arg) for arg in exc.args)
            output[_USAGE_ERROR] = message
            # xdist stops the session for shouldfail instead of calling it a crash.
            session.shouldfail = message
            raise
        state = self.state()
        selection = state.selection if state is not None else None
        if state is not None and selection is not None and state.settings.show_dag:
            from pytest_flowrun._terminal import dag_lines

            resources = dict(state.settings.resources)
            output[_DAG] = dag_lines(
                selection.full, selection.selected, selection.excluded, resources
            )


class XdistController:
    """Registered on a pytest-xdist controller only: each worker runs the setup its tests
    need, and the controller prints each worker's summary and fails the session for a
    failed task, as without xdist."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reports: dict[str, dict[str, Any]] = {}
        #: Each distinct usage error a worker refused its collection with, in order.
        self.usage_errors: dict[str, None] = {}
        self.dags: dict[str, list[str]] = {}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """Keep the report, usage error and DAG a worker sends back."""
        output = getattr(node, "workeroutput", {})
        worker = str(getattr(node.gateway, "id", "?"))
        report = output.get("flowrun_report")
        if isinstance(report, dict):
            self.reports[worker] = report
        usage_error = output.get(_USAGE_ERROR)
        if isinstance(usage_error, str):
            self.usage_errors[usage_error] = None
        dag = output.get(_DAG)
        if isinstance(dag, list):
            self.dags[worker] = [str(line) for line in dag]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        """Raise the workers' usage errors, once each, where xdist stopped the session for
        them (``Interrupted``): pytest prints them and exits with its usage-error code."""
        try:
            result = yield
        except KeyboardInterrupt:
            if not self.usage_errors:
                raise
        else:
            if not self.usage_errors:
                return result
        raise pytest.UsageError(*self.usage_errors) from None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Fail the session for a task that failed on any worker; write the CI summary,
        one section per worker."""
        if session.exitstatus == pytest.ExitCode.OK and any(
            has_failures(report) for report in self.reports.values()
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if not self.reports:  # no worker ran tasks: no summary (and no _summary import)
            return
        from pytest_flowrun._summary import write_summaries

        write_summaries(
            self.settings,
            [(f"flowrun ({worker})", report) for worker, report in sorted(self.reports.items())],
        )

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """The DAG (``--flowrun-dag``), then one summary section per worker that ran tasks."""
        if not self.dags and not self.reports:  # most sessions: _terminal is not imported
            return
        from pytest_flowrun._terminal import write_dag_lines, write_summary

        if len({tuple(lines) for lines in self.dags.values()}) == 1:
            write_dag_lines(terminalreporter, next(iter(self.dags.values())))
        else:
            for worker, lines in sorted(self.dags.items()):
                write_dag_lines(terminalreporter, lines, f"flowrun: setup DAG [{worker}]")
        for worker, report in sorted(self.reports.items()):
            write_summary(
                terminalreporter, report, table=self.settings.show_dag, title=f"flowrun [{worker}]"
            )
