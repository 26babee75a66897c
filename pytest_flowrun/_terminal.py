"""What the plugin prints: the selected DAG before the tests, the run in the summary.

Imports the plugin's ``_redact`` and ``_report``; the runtime only inside functions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flowrun._redact import redact_report
from pytest_flowrun._report import has_failures, teardown_failures, teardown_text

if TYPE_CHECKING:
    from flowrun.dag import Dag

_FAILED = ("FAILED", "TIMED_OUT")
#: The summary claims a speed-up only for a setup span and serial time of at least this.
MIN_SPEEDUP_SPAN_S = 0.1


def write_dag(
    config: pytest.Config,
    full: Dag,
    selected: Sequence[str],
    excluded: Sequence[str],
    resources: Mapping[str, int] | None = None,
) -> None:
    """Print the DAG of the selected tasks and the tasks left out (``--flowrun-dag``),
    with the resource caps, if any."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        write_dag_lines(reporter, dag_lines(full, selected, excluded, resources))


def dag_lines(
    full: Dag,
    selected: Sequence[str],
    excluded: Sequence[str],
    resources: Mapping[str, int] | None = None,
) -> list[str]:
    """The lines ``write_dag`` prints under its title (a pytest-xdist worker sends them to
    the controller, which prints them)."""
    if selected:
        lines = full.subgraph(selected).render(resources=resources or None).splitlines()
    else:
        lines = ["no selected test needs a setup task"]
    if excluded:
        lines.append(f"excluded by selection: {', '.join(excluded)}")
    return lines


def write_dag_lines(
    reporter: pytest.TerminalReporter, lines: Sequence[str], title: str = "flowrun: setup DAG"
) -> None:
    """Print ``lines`` (``dag_lines``) under ``title``."""
    reporter.ensure_newline()
    reporter.write_sep("-", title)
    for line in lines:
        reporter.write_line(line)


def write_summary(
    reporter: pytest.TerminalReporter,
    report: dict[str, Any],
    *,
    table: bool,
    title: str = "flowrun",
) -> None:
    """The summary section: one line of totals, every failure with its traceback once,
    teardown failures, and with ``table`` the per-task table and the critical path."""
    report = redact_report(report)  # no results, no URL passwords: terminals end up in CI logs
    tasks: dict[str, dict[str, Any]] = report["tasks"]
    bad = has_failures(report)
    reporter.write_sep("=", title, red=bad, green=not bad, bold=True)
    reporter.write_line(summary_line(report), red=bad)
    for name, task in tasks.items():
        if task["status"] in _FAILED and task["error"] is not None:
            error = task["error"]
            reporter.write_line(
                f"task {name!r} {task['status']} after {task['attempts']} attempt"
                f"{'s' * (task['attempts'] != 1)}: {error['type']}: {error['message']}",
                red=True,
            )
            if task["status"] == "FAILED":
                for line in user_traceback(error["traceback"]):
                    reporter.write_line("    " + line)
    for name, teardown in teardown_failures(report):
        error = teardown["error"]
        reporter.write_line(
            f"task {name!r} teardown {teardown['status']}: {teardown_text(teardown)}", red=True
        )
        if error is not None and teardown["status"] == "FAILED":
            for line in user_traceback(error["traceback"]):
                reporter.write_line("    " + line)
    if table:
        for line in table_lines(report):
            reporter.write_line(line)


def user_traceback(text: str) -> list[str]:
    """The lines of a formatted traceback without the frames of flowrun's own runtime."""
    import flowrun

    runtime = os.path.dirname(flowrun.__file__) + os.sep
    lines: list[str] = []
    skipping = False
    for line in text.rstrip().splitlines():
        if line.startswith('  File "'):
            skipping = line[len('  File "') :].startswith(runtime)
        elif not line.startswith("    "):
            skipping = False
        if not skipping:
            lines.append(line)
    return lines


def summary_line(report: dict[str, Any]) -> str:
    """``flowrun: 5 tasks run, 1 failed, 1 skipped; setup 1.20s, serial 3.10s, 2.58x speed-up``.

    After an interrupt, the cancelled tasks are told apart: ``2 cancelled while running``
    (counted among those run), ``6 cancelled before starting``.
    """
    tasks: dict[str, dict[str, Any]] = report["tasks"]
    counts: dict[str, int] = report["counts"]
    ran = sum(1 for task in tasks.values() if task["attempts"])
    parts = [f"{ran} task{'s' * (ran != 1)} run"]
    failed = counts.get("FAILED", 0)
    timed_out = counts.get("TIMED_OUT", 0)
    parts.append(f"{failed} failed")
    if timed_out:
        parts.append(f"{timed_out} timed out")
    parts.append(f"{counts.get('SKIPPED', 0)} skipped")
    # A task cancelled while running is also one that ran: say which, so that no task
    # reads as counted twice ("5 run ... 11 cancelled" of 11).
    cut = sum(1 for t in tasks.values() if t["status"] == "CANCELLED" and t["attempts"])
    if cut:
        parts.append(f"{cut} cancelled while running")
    if counts.get("CANCELLED", 0) - cut:
        parts.append(f"{counts['CANCELLED'] - cut} cancelled before starting")
    span = float(report["setup_span_s"] or 0.0)
    serial = float(report["serial_s"] or 0.0)
    # An interrupted run's span is cut short: a speed-up computed from it would flatter.
    interrupted = report.get("status") == "CANCELLED"
    # Below MIN_SPEEDUP_SPAN_S the ratio is mostly the run's own overhead: no claim.
    claim = span >= MIN_SPEEDUP_SPAN_S and serial >= MIN_SPEEDUP_SPAN_S and not interrupted
    speed = f", {serial / span:.2f}x speed-up" if claim else ""
    return f"flowrun: {', '.join(parts)}; setup {span:.2f}s, serial {serial:.2f}s{speed}"


def table_lines(report: dict[str, Any]) -> list[str]:
    """The per-task table and the critical path (``--flowrun-dag``)."""
    rows = [("task", "status", "start", "duration", "attempts", "error")]
    for name, task in report["tasks"].items():
        error = task["error"]
        if task["skipped_because"]:
            note = f"needs {task['skipped_because']!r}"
        elif error is not None:
            note = f"{error['type']}: {error['message']}"
        else:
            note = ""
        if len(note) > 60:
            note = note[:59] + "…"
        rows.append(
            (
                name,
                task["status"],
                _seconds(task["offset_s"]),
                _seconds(task["duration_s"]),
                str(task["attempts"]),
                note,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5]
        for row in rows
    ]
    lines = [line.rstrip() for line in lines]
    path = report["critical_path"]
    if path:
        lines.append(f"critical path: {' -> '.join(path)} ({report['critical_path_s']:.2f}s)")
    return lines


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"
