"""The CI summary files: ``--flowrun-summary`` and ``$GITHUB_STEP_SUMMARY``.

At the end of the session the run's Markdown summary (``_markdown.summary_markdown``) is
appended to the file named by ``--flowrun-summary`` (ini ``flowrun_summary``) and, when
the environment variable ``GITHUB_STEP_SUMMARY`` is set and ini ``flowrun_github_summary``
is not false, to that file too: it is how GitHub Actions shows a job summary. Both files
keep what they already hold. Under pytest-xdist the controller writes one section per
worker (``flowrun (gw0)``, ...); workers write nothing.

Task results are never in the summary, and every URL password in it is masked
(``_redact``).

Imports the plugin's ``_options``, ``_redact`` and ``_report``, and ``_markdown`` (with
``_mermaid``) only when there is a summary to write: the xdist controller calls
``write_summaries`` in every session, most often with no file to write to. Never the
runtime.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_flowrun._options import Settings
from pytest_flowrun._redact import redact_report
from pytest_flowrun._report import empty_report

#: The variable GitHub Actions sets to the file of the job's summary.
GITHUB_ENV = "GITHUB_STEP_SUMMARY"


def summary_targets(settings: Settings) -> list[tuple[Path, str]]:
    """``(path, the option that named it)`` of each file the summary goes to."""
    targets: list[tuple[Path, str]] = []
    if settings.summary_path is not None:
        targets.append((settings.summary_path, "--flowrun-summary / flowrun_summary"))
    github = os.environ.get(GITHUB_ENV, "").strip()
    if github and settings.github_summary:
        path = Path(github)
        if path not in (p for p, _ in targets):
            targets.append((path, f"${GITHUB_ENV} (off with flowrun_github_summary = false)"))
    return targets


def write_summaries(settings: Settings, reports: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Append a section per ``(title, report)`` to each summary file.

    Raises ``pytest.UsageError`` naming the path and the option when a file cannot be
    written.
    """
    targets = summary_targets(settings)
    if not targets or not reports:
        return
    from pytest_flowrun._markdown import append_markdown, summary_markdown

    markdown = "\n".join(
        summary_markdown(redact_report(report), title=title) for title, report in reports
    )
    for path, option in targets:
        try:
            append_markdown(path, markdown)
        except OSError as exc:
            raise pytest.UsageError(
                f"flowrun: cannot write the summary to {str(path)!r} ({option}): "
                f"{exc.strerror or exc}"
            ) from None


def write_session_summary(
    config: pytest.Config, settings: Settings, report: dict[str, Any] | None
) -> None:
    """The summary of a session without pytest-xdist (under xdist the controller writes
    the workers' reports): ``report``, or an empty one when the run never started."""
    distributed = getattr(config.option, "dist", "no") != "no"  # an xdist controller
    if hasattr(config, "workerinput") or distributed:
        return
    write_summaries(settings, [("flowrun", report if report is not None else empty_report())])
