"""Run reports built by hand, shaped like ``flowrun._report.build_report``'s, with fixed times.

The Markdown tests read these instead of running anything, so that no figure in them
depends on the clock.
"""

from __future__ import annotations

from typing import Any

from pytest_flowrun._report import empty_report as plugin_empty_report

STATUSES = ("PENDING", "RUNNING", "SUCCESS", "FAILED", "TIMED_OUT", "SKIPPED", "CANCELLED")

DSN = "postgres://app:hunter2@db:5432/app"


def error(type_: str, message: str, traceback: str = "") -> dict[str, str]:
    """A task's ``error`` entry."""
    return {"type": type_, "message": message, "traceback": traceback}


def traceback(message: str, type_: str = "RuntimeError") -> str:
    """A formatted traceback of a task raising ``type_(message)`` in a conftest."""
    return (
        "Traceback (most recent call last):\n"
        '  File "/suite/conftest.py", line 7, in migrations\n'
        f"    raise {type_}(...)\n"
        f"{type_}: {message}\n"
    )


def teardown(
    status: str = "SUCCESS", duration_s: float | None = 0.1, error: dict[str, str] | None = None
) -> dict[str, Any]:
    """A task's ``teardown`` entry."""
    return {"status": status, "duration_s": duration_s, "error": error}


def entry(
    status: str = "SUCCESS",
    *,
    deps: tuple[str, ...] = (),
    offset_s: float | None = None,
    duration_s: float | None = None,
    attempts: int | None = None,
    result: Any = None,
    error: dict[str, str] | None = None,
    skipped_because: str | None = None,
    teardown: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A task entry; a task given an ``offset_s`` ran once unless ``attempts`` says more."""
    if attempts is None:
        attempts = 1 if offset_s is not None else 0
    return {
        "status": status,
        "deps": list(deps),
        "attempts": attempts,
        "ready_at": None,
        "started_at": None,
        "finished_at": None,
        "offset_s": offset_s,
        "queued_s": 0.0 if offset_s is not None else None,
        "duration_s": duration_s,
        "result": result,
        "error": error,
        "skipped_because": skipped_because,
        "teardown": teardown,
    }


def report(tasks: dict[str, dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A run report of ``tasks`` whose totals add up: counts, span, serial time, status.

    ``fields`` override any run field (``duration_s``, ``critical_path``...).
    """
    ends = [
        t["offset_s"] + (t["duration_s"] or 0.0)
        for t in tasks.values()
        if t["offset_s"] is not None
    ]
    starts = [t["offset_s"] for t in tasks.values() if t["offset_s"] is not None]
    counts = dict.fromkeys(STATUSES, 0)
    for task in tasks.values():
        counts[task["status"]] += 1
    failed = (
        counts["FAILED"]
        or counts["TIMED_OUT"]
        or any(
            t["teardown"] is not None and t["teardown"]["status"] != "SUCCESS"
            for t in tasks.values()
        )
    )
    built: dict[str, Any] = {
        "run_id": "run-1",
        "dag": "pytest-session",
        "status": "FAILED" if failed else "SUCCESS",
        "started_at": "2025-01-01T00:00:00+00:00",
        "finished_at": "2025-01-01T00:00:10+00:00",
        "duration_s": 10.0,
        "setup_span_s": (max(ends) - min(starts)) if starts else 0.0,
        "serial_s": sum(t["duration_s"] or 0.0 for t in tasks.values()),
        "critical_path": [],
        "critical_path_s": 0.0,
        "counts": counts,
        "tasks": tasks,
        # what the plugin's JSON report adds
        "selected": list(tasks),
        "excluded": [],
        "max_parallel": 16,
        "default_timeout_s": None,
    }
    built.update(fields)
    return built


def empty_report() -> dict[str, Any]:
    """The plugin's report of a session in which no task ran, as its JSON file holds it."""
    report = plugin_empty_report()
    report.update(selected=[], excluded=[], max_parallel=16, default_timeout_s=None)
    return report


# -- the reports the Mermaid check renders ----------------------------------------------


def success_report() -> dict[str, Any]:
    """A diamond that succeeded, two of its tasks generators, torn down."""
    return report(
        {
            "database": entry(offset_s=0.0, duration_s=0.8, teardown=teardown(duration_s=0.3)),
            "token": entry(offset_s=0.0, duration_s=0.25, result="secret-token"),
            "migrations": entry(deps=("database",), offset_s=0.8, duration_s=0.7),
            "api": entry(
                deps=("migrations", "token"),
                offset_s=1.5,
                duration_s=0.5,
                result=DSN,
                teardown=teardown(duration_s=0.2),
            ),
        },
        duration_s=6.0,
        critical_path=["database", "migrations", "api"],
        critical_path_s=2.0,
    )


def failure_report() -> dict[str, Any]:
    """A failed task, the task it skipped, and an unrelated task that still ran."""
    message = f"cannot connect to {DSN}"
    return report(
        {
            "database": entry(offset_s=0.0, duration_s=0.5, teardown=teardown(duration_s=0.1)),
            "migrations": entry(
                "FAILED",
                deps=("database",),
                offset_s=0.5,
                duration_s=0.2,
                error=error("RuntimeError", message, traceback(message)),
            ),
            "seed": entry("SKIPPED", deps=("migrations",), skipped_because="migrations"),
            "mail": entry(offset_s=0.0, duration_s=0.3),
        },
        duration_s=3.0,
        critical_path=["database", "migrations"],
        critical_path_s=0.7,
    )


def timeout_report() -> dict[str, Any]:
    """A task that timed out on both of its attempts, and its skipped child."""
    return report(
        {
            "queue": entry(
                "TIMED_OUT",
                offset_s=0.0,
                duration_s=2.0,
                attempts=2,
                error=error("TaskTimeoutError", "task 'queue' timed out after 1s"),
            ),
            "worker": entry("SKIPPED", deps=("queue",), skipped_because="queue"),
        },
        duration_s=2.1,
        critical_path=["queue"],
        critical_path_s=2.0,
    )


def cancelled_report() -> dict[str, Any]:
    """A run interrupted by Ctrl-C: a task cancelled while running, one never started."""
    return report(
        {
            "slow": entry("CANCELLED", offset_s=0.0, duration_s=1.2),
            "after_slow": entry("CANCELLED", deps=("slow",)),
            "quick": entry(offset_s=0.0, duration_s=0.05, teardown=teardown(duration_s=0.01)),
        },
        status="CANCELLED",
        duration_s=1.3,
    )


def teardown_failure_report() -> dict[str, Any]:
    """Setup succeeded; the teardowns failed, timed out and were cut short."""
    return report(
        {
            "database": entry(
                offset_s=0.0,
                duration_s=0.4,
                teardown=teardown(
                    "FAILED",
                    0.3,
                    error("OSError", "cannot drop", traceback("cannot drop", "OSError")),
                ),
            ),
            "cache": entry(
                deps=("database",),
                offset_s=0.4,
                duration_s=0.1,
                teardown=teardown(
                    "TIMED_OUT", 1.0, error("TaskTimeoutError", "teardown of 'cache' timed out")
                ),
            ),
            "broker": entry(offset_s=0.0, duration_s=0.2, teardown=teardown("CANCELLED", 0.0)),
        },
        duration_s=4.0,
    )


#: Task names that Mermaid would read as syntax if they were written as they are.
ODD_NAMES = (
    "db server",
    "migrations: v2",
    'seed "data"',
    "it's",
    "ünïcødé 日本語 ✓",
    "title",
    "section x",
    "end",
    "click me",
    "%% not a comment",
    "2024-01-01 backup",
    "a|b <b>bold</b> & `code`",
    "#quot; #35; ;",
    "style",
    "graph",
    "subgraph",
    "dateFormat x",
    "https://user:hunter2@host/path",
)


def odd_names_report() -> dict[str, Any]:
    """A chain through every odd name, each with a teardown; the last one failed."""
    tasks: dict[str, dict[str, Any]] = {}
    previous: tuple[str, ...] = ()
    for i, name in enumerate(ODD_NAMES):
        last = i == len(ODD_NAMES) - 1
        tasks[name] = entry(
            "FAILED" if last else "SUCCESS",
            deps=previous,
            offset_s=0.1 * i,
            duration_s=0.1,
            error=error("ValueError", f"bad name {name!r}") if last else None,
            teardown=teardown(duration_s=0.05),
        )
        previous = (name,)
    return report(tasks, duration_s=5.0, critical_path=list(ODD_NAMES), critical_path_s=1.8)


def long_report() -> dict[str, Any]:
    """A setup of several minutes, with teardown start times recorded by the runtime."""
    return report(
        {
            "cluster": entry(
                offset_s=0.0,
                duration_s=185.0,
                teardown={**teardown(duration_s=20.0), "offset_s": 400.0},
            ),
            "images": entry(deps=("cluster",), offset_s=185.0, duration_s=60.5),
        },
        duration_s=420.0,
    )


def tiny_report() -> dict[str, Any]:
    """Sub-millisecond tasks."""
    return report(
        {
            "a": entry(offset_s=0.0, duration_s=0.0002),
            "b": entry(deps=("a",), offset_s=0.0003, duration_s=0.0),
        },
        duration_s=0.001,
    )


REPORTS = {
    "success": success_report,
    "failures": failure_report,
    "timeouts": timeout_report,
    "cancelled": cancelled_report,
    "teardown failures": teardown_failure_report,
    "odd names": odd_names_report,
    "long run": long_report,
    "tiny run": tiny_report,
}
