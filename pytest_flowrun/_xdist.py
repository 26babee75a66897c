"""The pytest-xdist integration, registered on a controller only when xdist is present.

Each worker runs the setup its own tests need and sends its report back in
``workeroutput``; ``XdistController`` prints each worker's summary and fails the
session for a failed task, as without xdist.

Imports the plugin's ``_options`` and ``_report``; ``_terminal`` inside functions.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_flowrun._options import Settings
from pytest_flowrun._report import has_failures


class XdistController:
    """Registered on a pytest-xdist controller only: each worker runs the setup its tests
    need, and the controller prints each worker's summary and fails the session for a
    failed task, as without xdist."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reports: dict[str, dict[str, Any]] = {}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """Keep the report a worker sends back."""
        report = getattr(node, "workeroutput", {}).get("flowrun_report")
        if isinstance(report, dict):
            self.reports[str(getattr(node.gateway, "id", "?"))] = report

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Fail the session for a task that failed on any worker; write the CI summary,
        one section per worker."""
        if session.exitstatus == pytest.ExitCode.OK and any(
            has_failures(report) for report in self.reports.values()
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        from pytest_flowrun._summary import write_summaries

        write_summaries(
            self.settings,
            [(f"flowrun ({worker})", report) for worker, report in sorted(self.reports.items())],
        )

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """One summary section per worker that ran tasks."""
        from pytest_flowrun._terminal import write_summary

        for worker, report in sorted(self.reports.items()):
            write_summary(
                terminalreporter, report, table=self.settings.show_dag, title=f"flowrun [{worker}]"
            )
