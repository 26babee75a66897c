"""Turns a ``RunRecord`` into the plain, JSON-serialisable run report."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from flowrun.dag import _heaviest_paths, _stable_topological_order, _trace_path
from flowrun.state import RunRecord, TaskError, TaskRunRecord, TaskStatus

_MAX_REPR = 2000


def build_report(run: RunRecord) -> dict[str, Any]:
    """The report of ``run``: run fields, totals, the critical path and every task."""
    origin = run.started_at
    tasks: dict[str, Any] = {}
    durations: dict[str, float] = {}
    starts: list[float] = []
    ends: list[float] = []
    counts = {status.value: 0 for status in TaskStatus}
    held = run.task_resources
    # One pass over the records; ``_value_`` is what ``.value`` returns, without the
    # enum's Python-level descriptor (the report was a third of a no-op run's cost).
    for name, record in run.tasks.items():
        duration = record.duration_s
        entry = tasks[name] = _task_entry(record, origin, duration)
        if held and name in held:
            entry["resources"] = dict(held[name])
        if duration is not None:
            durations[name] = duration
        started = record.started_at
        if started is not None:
            starts.append(started)
            if record.finished_at is not None and started:
                ends.append(record.finished_at)
        counts[record.status._value_] += 1
    path, path_s = _critical_path(run, durations)
    return {
        "run_id": run.run_id,
        "dag": run.dag_name,
        "status": run.status.value,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_s": run.duration_s,
        "setup_span_s": (max(ends) - min(starts)) if starts and ends else 0.0,
        "serial_s": sum(durations.values()),
        "critical_path": path,
        "critical_path_s": path_s,
        "counts": counts,
        "executor": run.executor,
        "resources": dict(run.resources),
        "tasks": tasks,
    }


def _task_entry(
    record: TaskRunRecord, origin: float | None, duration: float | None
) -> dict[str, Any]:
    teardown = None
    if record.teardown_status is not None:
        teardown = {
            "status": record.teardown_status._value_,
            "duration_s": record.teardown_s,
            "error": _error(record.teardown_error),
            "offset_s": _offset(record.teardown_started_at, origin),
        }
    started = record.started_at
    result = record.result
    error = record.error
    return {
        "status": record.status._value_,
        "deps": list(record.deps),
        "attempts": record.attempts,
        "ready_at": _iso(record.ready_at),
        "started_at": _iso(started),
        "finished_at": _iso(record.finished_at),
        "offset_s": _offset(started, origin),
        "queued_s": record.queued_s,
        "duration_s": duration,
        "result": None if result is None else jsonable(result),
        "error": None if error is None else _error(error),
        "skipped_because": record.skipped_because,
        "teardown": teardown,
        "resources": {},
    }


def _offset(timestamp: float | None, origin: float | None) -> float | None:
    """Seconds from the run's start to ``timestamp``, or None without both."""
    return timestamp - origin if timestamp is not None and origin is not None else None


def _critical_path(run: RunRecord, durations: dict[str, float]) -> tuple[list[str], float]:
    """The heaviest dependency chain by running time.

    The tasks are put in topological order first, whatever order a (persistent) store
    returned them in; ties go to the store's order.
    """
    names = list(run.tasks)
    position = {name: i for i, name in enumerate(names)}
    parents = [[position[d] for d in run.tasks[name].deps if d in position] for name in names]
    weights = [durations.get(name, 0.0) for name in names]
    best, via = _heaviest_paths(_stable_topological_order(parents), parents, weights)
    return _trace_path(names, best, via)


def _error(error: TaskError | None) -> dict[str, str] | None:
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "traceback": error.traceback}


#: ``datetime.isoformat()`` of whole UTC seconds, without the offset: a run's timestamps
#: fall in few distinct seconds, so most of them need only the microseconds appended.
_SECONDS: dict[float, str] = {}


def _iso(timestamp: float | None) -> str | None:
    """``datetime.fromtimestamp(timestamp, UTC).isoformat()``, at a fifth of its cost.

    The split into seconds and microseconds is the one ``fromtimestamp`` makes (the
    fraction scaled to microseconds and rounded half to even, carried into the seconds);
    anything but a finite float goes through ``datetime`` itself.
    """
    if timestamp is None:
        return None
    if type(timestamp) is not float or not math.isfinite(timestamp):
        return datetime.fromtimestamp(timestamp, UTC).isoformat()
    fraction, seconds = math.modf(timestamp)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        micros -= 1_000_000
        seconds += 1.0
    elif micros < 0:
        micros += 1_000_000
        seconds -= 1.0
    head = _SECONDS.get(seconds)
    if head is None:
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        head = _SECONDS[seconds] = datetime.fromtimestamp(seconds, UTC).isoformat()[:-6]
    return f"{head}.{micros:06d}+00:00" if micros else f"{head}+00:00"


class _NotJsonable(Exception):
    pass


def jsonable(value: Any) -> Any:
    """``value`` if it is plain JSON data, else its ``repr`` (cut at 2,000 characters)."""
    try:
        return _plain(value, 0)
    except _NotJsonable:
        try:
            text = repr(value)
        except Exception:  # a task's result must not break its run's report
            text = f"<{type(value).__qualname__} object (repr() failed)>"
        return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 1] + "…"


def _plain(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise _NotJsonable
    if depth < 20:
        if type(value) in (list, tuple):
            return [_plain(v, depth + 1) for v in value]
        if type(value) is dict and all(isinstance(k, str) for k in value):
            return {k: _plain(v, depth + 1) for k, v in value.items()}
    raise _NotJsonable
