"""Turns a ``RunRecord`` into the plain, JSON-serialisable run report."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from flowrun._gc import gc_paused
from flowrun.dag import _heaviest_paths, _stable_topological_order, _trace_path
from flowrun.state import RunRecord, TaskError, TaskRunRecord, TaskStatus

_MAX_REPR = 2000


def build_report(run: RunRecord) -> dict[str, Any]:
    """The report of ``run``: run fields, totals, the critical path and every task."""
    with gc_paused():  # a few objects per task, none of them garbage: see flowrun._gc
        return _build_report(run)


def _build_report(run: RunRecord) -> dict[str, Any]:
    origin = run.started_at
    tasks: dict[str, Any] = {}
    durations: dict[str, float] = {}
    starts: list[float] = []
    ends: list[float] = []
    counts = {status.value: 0 for status in TaskStatus}
    held = run.task_resources
    # The ISO text of each task's finish, for the ``ready_at`` of the tasks that waited
    # for it (a task is ready when the last parent it waited for finishes), and of the
    # run's start, for the tasks ready at once: a third of a report's timestamps repeat.
    finishes: dict[float | None, str | None] = {None: None, origin: _iso(origin)}
    # The critical path, in the same pass while the records come parents first (as the
    # scheduler's store keeps them): ``best[i]`` is the heaviest chain ending at task i,
    # ``via[i]`` the task before it on that chain (see ``dag._heaviest_paths``).
    position: dict[str, int] = {}
    best: list[float] = []
    via: list[int] = []
    in_order = True
    # One pass over the records, each task's entry built inline: a function call or a
    # property per field was a measurable part of a no-op run's report. ``_value_`` is
    # what ``.value`` returns, without the enum's Python-level descriptor.
    for name, record in run.tasks.items():
        ready = record.ready_at
        started = record.started_at
        finished = record.finished_at
        duration = None
        if started is not None:
            starts.append(started)
            if finished is not None:
                duration = durations[name] = finished - started
                if started:
                    ends.append(finished)
        if in_order:
            top = 0.0
            before = -1
            for dep in record.deps:
                p = position.get(dep)
                if p is None:
                    in_order = dep not in run.tasks  # a dependency outside the run: ignored
                    if not in_order:
                        break
                elif before < 0 or best[p] > top:
                    top = best[p]
                    before = p
            position[name] = len(best)
            best.append(top if duration is None else top + duration)
            via.append(before)
        result = record.result
        error = record.error
        status = record.status._value_
        counts[status] += 1
        ready_text = finishes.get(ready)
        if ready_text is None and ready is not None:
            ready_text = _iso(ready)
        finished_text = finishes[finished] = _iso(finished)
        tasks[name] = {
            "status": status,
            "deps": list(record.deps),
            "attempts": record.attempts,
            "ready_at": ready_text,
            "started_at": _iso(started),
            "finished_at": finished_text,
            "offset_s": None if started is None or origin is None else started - origin,
            "queued_s": None if ready is None or started is None else started - ready,
            "duration_s": duration,
            "result": None if result is None else jsonable(result),
            "error": None if error is None else _error(error),
            "skipped_because": record.skipped_because,
            "teardown": None if record.teardown_status is None else _teardown(record, origin),
            "resources": dict(held[name]) if held and name in held else {},
        }
    if in_order:
        path, path_s = _trace_path(list(run.tasks), best, via)
    else:  # records a store returned in another order
        path, path_s = _critical_path(run, durations)
    return {
        "run_id": run.run_id,
        "dag": run.dag_name,
        "status": run.status.value,
        "started_at": finishes[origin],  # the ready_at of the tasks ready at once
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


def _teardown(record: TaskRunRecord, origin: float | None) -> dict[str, Any]:
    status = record.teardown_status
    return {
        "status": None if status is None else status._value_,
        "duration_s": record.teardown_s,
        "error": _error(record.teardown_error),
        "offset_s": _offset(record.teardown_started_at, origin),
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
#: ``"000"`` to ``"999"``, filled when the first second is formatted (not at import): two
#: lookups write the microseconds at less than half the cost of a ``:06d`` format.
_DIGITS: list[str] = []


def _iso(timestamp: float | None) -> str | None:
    """``datetime.fromtimestamp(timestamp, UTC).isoformat()``, at a third of its cost.

    For a float from 0 to 10^11 s (any clock reading), the split into seconds and
    microseconds is the one ``fromtimestamp`` makes: the fraction (exact: ``timestamp``
    minus its floor loses no bit in that range) scaled to microseconds and rounded half to
    even, a full second carried. Anything else goes through ``datetime`` itself.
    """
    if type(timestamp) is float and 0.0 <= timestamp < 1e11:
        seconds = timestamp // 1.0
        micros = round((timestamp - seconds) * 1e6)
        if micros == 1_000_000:
            micros = 0
            seconds += 1.0
        head = _SECONDS.get(seconds)
        if head is None:
            if len(_SECONDS) >= 4096:
                _SECONDS.clear()
            if not _DIGITS:
                _DIGITS.extend([f"{n:03d}" for n in range(1000)])
            head = _SECONDS[seconds] = datetime.fromtimestamp(seconds, UTC).isoformat()[:-6]
        if not micros:
            return head + "+00:00"
        digits = _DIGITS
        return f"{head}.{digits[micros // 1000]}{digits[micros % 1000]}+00:00"
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


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
