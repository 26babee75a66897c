"""The setup run's report as the plugin reads and writes it: failures and the JSON file.

The report itself is the runtime's (``flowrun._report.build_report``); this module adds
what the plugin needs of it: whether it holds a failure, which teardowns failed, and the
``--flowrun-report`` file with the session's selection and options.

Imports the plugin's ``_options`` and ``_redact``; the runtime only inside ``build_report``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flowrun._options import Settings
from pytest_flowrun._redact import redact_report

if TYPE_CHECKING:
    from flowrun.state import StateStore


def build_report(store: StateStore, run_id: str) -> dict[str, Any]:
    """The runtime's report of run ``run_id`` in ``store``."""
    from flowrun._report import build_report as build

    return build(store.get(run_id))


def empty_report() -> dict[str, Any]:
    """The report of a session whose setup run never started."""
    return {
        "status": "NOT_STARTED",
        "setup_span_s": 0.0,
        "serial_s": 0.0,
        "critical_path": [],
        "critical_path_s": 0.0,
        "counts": {},
        "tasks": {},
    }


def has_failures(report: dict[str, Any]) -> bool:
    """True if a task failed or timed out, or a teardown did not succeed."""
    counts = report["counts"]
    if counts.get("FAILED") or counts.get("TIMED_OUT"):
        return True
    return bool(teardown_failures(report))


def teardown_failures(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(task name, teardown entry)`` of each task whose teardown did not succeed."""
    return [
        (name, task["teardown"])
        for name, task in report["tasks"].items()
        if task.get("teardown") is not None and task["teardown"]["status"] != "SUCCESS"
    ]


def teardown_text(teardown: dict[str, Any]) -> str:
    """What went wrong in a teardown: ``Type: message``, or its status without an error."""
    error = teardown["error"]
    return f"{error['type']}: {error['message']}" if error else str(teardown["status"])


def write_report(
    config: pytest.Config,
    settings: Settings,
    report: dict[str, Any] | None,
    selected: Sequence[str],
    excluded: Sequence[str],
) -> None:
    """Write ``report`` (or an empty one) with the selection and options as JSON to
    ``settings.report_path``, one file per pytest-xdist worker; without the task results
    unless ``settings.report_results``, URL passwords masked (``_redact``).

    Raises ``pytest.UsageError`` naming the path when it cannot be written.
    """
    path = settings.report_path
    if path is None:
        return
    data = dict(report) if report is not None else empty_report()
    data["selected"] = list(selected)
    data["excluded"] = list(excluded)
    data["max_parallel"] = settings.max_parallel
    data["default_timeout_s"] = settings.timeout_s
    data = redact_report(data, results=settings.report_results)
    # Each pytest-xdist worker runs its own setup: one report per worker.
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker:
        path = path.with_name(f"{path.stem}.{worker}{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise pytest.UsageError(
            f"flowrun: cannot write the report to {str(path)!r} (--flowrun-report / "
            f"flowrun_report): {exc.strerror or exc}"
        ) from None
