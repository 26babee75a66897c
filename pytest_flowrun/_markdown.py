"""The CI summary: the run report as Markdown, with Mermaid charts of the run and the DAG.

:func:`summary_markdown` turns a run report (``flowrun._report.build_report``'s dict,
with or without the plugin's ``selected``/``excluded``/... keys) into::

    ## flowrun
    flowrun: 3 tasks run, 1 failed, 0 skipped; setup 1.20s, serial 2.10s, 1.75x speed-up

    | task | status | start | duration | attempts | teardown | note |
    ...
    ### Timeline        a Mermaid gantt: a Setup section, one bar per task; a Teardown section
    ### DAG             a Mermaid flowchart: parent --> child, nodes styled by status
    ### Failures        each error with its traceback, folded

and :func:`append_markdown` appends it to a file (``--flowrun-summary``,
``$GITHUB_STEP_SUMMARY``), keeping what the file holds. Every string shown goes through
:func:`pytest_flowrun._redact.mask_url_passwords`; task results are never shown. The
charts' text is ``pytest_flowrun._mermaid``'s; this module holds the document around them.

Imports the plugin's ``_mermaid``, ``_redact``, ``_report`` and ``_terminal``; never the
runtime.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_flowrun._mermaid import (
    FAILED_STATUSES,
    flowchart_lines,
    gantt_lines,
    teardown_estimated,
)
from pytest_flowrun._redact import mask_url_passwords
from pytest_flowrun._report import teardown_failures
from pytest_flowrun._terminal import summary_line, user_traceback

_MAX_NOTE = 120


def summary_markdown(report: Mapping[str, Any], *, title: str = "flowrun") -> str:
    """The Markdown summary of ``report``, ending with a newline.

    ``title`` heads it (``"flowrun (gw0)"`` for a pytest-xdist worker). A run in which no
    task ran has the totals line and no charts. Raises ``KeyError`` when ``report`` lacks
    ``tasks``, ``counts`` or ``setup_span_s``.
    """
    tasks: Mapping[str, Mapping[str, Any]] = report["tasks"]
    lines = [f"## {_md(title)}", "", _md(summary_line(dict(report))), ""]
    if not tasks:
        lines += ["No setup task ran.", ""]
        return "\n".join(lines)
    lines += _table(report)
    path = [str(name) for name in report.get("critical_path") or ()]
    if path:
        seconds = float(report.get("critical_path_s") or 0.0)
        lines += [f"Critical path: {_md(' → '.join(path))} ({seconds:.2f}s)", ""]
    lines += ["### Timeline", "", "```mermaid", *gantt_lines(report), "```", ""]
    if teardown_estimated(tasks):
        lines += [
            "Teardown start times are estimated from the teardown order: "
            "the report records how long each teardown took, not when it started.",
            "",
        ]
    lines += ["### DAG", "", "```mermaid", *flowchart_lines(report), "```", ""]
    lines += _failures(report)
    return "\n".join(lines)


def append_markdown(path: str | os.PathLike[str], markdown: str) -> None:
    """Append ``markdown`` to the file at ``path``, keeping what it holds.

    A blank line separates it from earlier content; the file and its parent directories
    are created when missing. Raises ``OSError`` when the file cannot be written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    separator = ""
    try:
        with target.open("rb") as existing:
            size = existing.seek(0, os.SEEK_END)
            if size:
                existing.seek(max(0, size - 2))
                tail = existing.read()
                separator = (
                    "" if tail.endswith(b"\n\n") else "\n" if tail.endswith(b"\n") else "\n\n"
                )
    except FileNotFoundError:
        pass
    with target.open("a", encoding="utf-8") as out:
        out.write(separator + markdown)


# -- the table ----------------------------------------------------------------------------


def _table(report: Mapping[str, Any]) -> list[str]:
    lines = [
        "| task | status | start | duration | attempts | teardown | note |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for name, task in report["tasks"].items():
        teardown = task.get("teardown")
        if teardown is None:
            torn = "-"
        else:
            torn = f"{teardown['status']} {_seconds(teardown.get('duration_s'))}"
        cells = [
            _cell(name),
            _cell(task["status"]),
            _seconds(task.get("offset_s")),
            _seconds(task.get("duration_s")),
            str(task.get("attempts", 0)),
            _cell(torn),
            _cell(_note(task)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _note(task: Mapping[str, Any]) -> str:
    if task.get("skipped_because"):
        note = f"needs {task['skipped_because']!r}"
    elif task.get("error"):
        note = _one_line(task["error"])
    elif task.get("teardown") and task["teardown"].get("error"):
        note = "teardown: " + _one_line(task["teardown"]["error"])
    else:
        return ""
    note = mask_url_passwords(note)
    return note if len(note) <= _MAX_NOTE else note[: _MAX_NOTE - 1] + "…"


def _one_line(error: Mapping[str, Any]) -> str:
    message = " ".join(str(error.get("message") or "").split())
    return f"{error.get('type')}: {message}" if message else str(error.get("type"))


def _failures(report: Mapping[str, Any]) -> list[str]:
    torn = dict(teardown_failures(dict(report)))
    entries: list[tuple[str, str, Mapping[str, Any] | None]] = []
    for name, task in report["tasks"].items():
        if task["status"] in FAILED_STATUSES:
            entries.append((f"task {name!r} {task['status']}", task["status"], task.get("error")))
        if name in torn:
            teardown = torn[name]
            what = f"task {name!r} teardown {teardown['status']}"
            entries.append((what, teardown["status"], teardown.get("error")))
    if not entries:
        return []
    lines = ["### Failures", ""]
    for what, status, error in entries:
        headline = f"{what}: {_one_line(error)}" if error else what
        trace = user_traceback(str(error.get("traceback") or "")) if error else []
        if status != "FAILED" or not trace:  # a timeout's traceback is the runtime's own
            lines += [f"- {_md(headline)}", ""]
            continue
        text = mask_url_passwords("\n".join(trace))
        fence = "`" * max(3, _longest_run(text, "`") + 1)
        lines += [
            "<details>",
            f"<summary>{_html(headline)}</summary>",
            "",
            fence + "text",
            text,
            fence,
            "",
            "</details>",
            "",
        ]
    return lines


# -- Markdown text ------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~])")


def _md(text: str) -> str:
    """``text`` shown literally in Markdown: masked, its Markdown characters escaped."""
    return _MD_SPECIAL.sub(r"\\\1", mask_url_passwords(text))


def _cell(text: str) -> str:
    """``text`` in a table cell: one line, literal."""
    return _md(" ".join(str(text).split()))


def _html(text: str) -> str:
    text = " ".join(mask_url_passwords(text).split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _longest_run(text: str, character: str) -> int:
    runs: Iterable[str] = re.findall(f"{re.escape(character)}+", text)
    return max((len(run) for run in runs), default=0)
