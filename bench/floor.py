"""The bare loop plus flowrun's guarantees at their least cost: what target 7's bound meets.

Target 7 bounds the whole public path (registration, run, report) at 1.5x the bare loop,
which registers nothing, records nothing, bounds no attempt in time and reports nothing.
This module is that bare loop, ``bench.reference.run_minimal``, kept in its shape
(``graphlib``, one asyncio task per ready node through the event loop, a semaphore), with
the guarantees added in the cheapest form we know, as a user of the stdlib would write them:

- registration: ``@floor_task(name=..., deps=[...], timeout_s=..., registry=...)`` checks
  the timeout, keeps a slotted spec in a dict and leaves it on the function;
- records: a slotted record per task when it starts, replaced (not mutated) when it ends,
  stamped with ``time.time()``;
- timeouts: real ones, one loop timer per distinct timeout value over a deque of
  deadlines (flowrun's own scheme, the cheapest we found);
- failures: an error or a timeout is recorded and the task's descendants are skipped;
- report: per task a dict of the report's fourteen keys, its stamps in ISO 8601 (with
  flowrun's formatter, the cheapest we found).

Left out, though flowrun has them: retries, the grace for code that ignores its
cancellation, critical-path priorities, upstream results, the ``RunContext``, sync tasks,
a state store, teardown, the run's totals and critical path. So this is a floor: an
implementation with all of flowrun's guarantees costs at least this much.
"""

from __future__ import annotations

import asyncio
import graphlib
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from bench import workloads
from flowrun._gc import gc_paused
from flowrun._report import _iso

F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, Any]])


class FloorSpec:
    """One registered task."""

    __slots__ = ("deps", "fn", "name", "timeout_s")

    def __init__(
        self, name: str, fn: Callable[[], Coroutine[Any, Any, Any]], deps: tuple[str, ...], t: float
    ) -> None:
        self.name = name
        self.fn = fn
        self.deps = deps
        self.timeout_s = t


def floor_task(
    *, name: str, deps: list[str], timeout_s: float, registry: dict[str, FloorSpec]
) -> Callable[[F], F]:
    """Register the decorated coroutine function as task ``name`` in ``registry``."""

    def decorate(fn: F) -> F:
        if type(timeout_s) not in (int, float) or not 0 < timeout_s < float("inf"):
            raise ValueError(f"task {name!r}: timeout_s must be a positive number")
        spec = registry[name] = FloorSpec(name, fn, tuple(deps), float(timeout_s))
        fn.__flowrun_floor__ = spec  # type: ignore[attr-defined]
        return fn

    return decorate


def register_noop(graph: workloads.Graph, timeout_s: float = 30) -> dict[str, FloorSpec]:
    """``graph`` as no-op tasks registered in a loop, as ``bench.public.register_noop`` does."""
    registry: dict[str, FloorSpec] = {}
    for name, deps in graph.items():

        @floor_task(name=name, deps=list(deps), timeout_s=timeout_s, registry=registry)
        async def _body() -> None:
            return None

    return registry


class FloorRecord:
    """One task's state; a transition replaces it."""

    __slots__ = ("deps", "finished_at", "name", "ready_at", "result", "started_at", "status")

    def __init__(
        self,
        name: str,
        status: str,
        deps: tuple[str, ...],
        ready_at: float | None,
        started_at: float | None,
        finished_at: float | None,
        result: Any,
    ) -> None:
        self.name = name
        self.status = status
        self.deps = deps
        self.ready_at = ready_at
        self.started_at = started_at
        self.finished_at = finished_at
        self.result = result


async def floor_run(registry: Mapping[str, FloorSpec], max_parallel: int) -> dict[str, FloorRecord]:
    """Run every task of ``registry`` under ``max_parallel``; every task's final record."""
    graph = {name: spec.deps for name, spec in registry.items()}
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()
    loop = asyncio.get_running_loop()
    semaphore = asyncio.Semaphore(max_parallel)
    finished: asyncio.Future[None] = loop.create_future()
    records: dict[str, FloorRecord] = {}  # a task's first record is made when it starts
    children: dict[str, list[str]] = {}  # made at the first failure: only a failure needs it
    tasks: set[asyncio.Task[None]] = set()
    remaining = len(graph)
    # Per timeout value, the deadlines of the attempts in the order they started, and the
    # one timer waiting for the earliest.
    queues: dict[float, deque[tuple[float, str, asyncio.Task[Any]]]] = {}
    timers: dict[float, asyncio.TimerHandle] = {}
    expired: set[str] = set()

    def check(timeout_s: float) -> None:
        del timers[timeout_s]
        queue = queues[timeout_s]
        now = loop.time()
        while queue and queue[0][0] <= now:
            _, node, attempt = queue.popleft()
            if not attempt.done():
                expired.add(node)
                attempt.cancel()
        if queue:
            timers[timeout_s] = loop.call_at(queue[0][0], check, timeout_s)

    def ended(node: str) -> None:
        nonlocal remaining
        remaining -= 1
        if not remaining:
            for timer in timers.values():
                timer.cancel()
            finished.set_result(None)

    async def run(node: str, ready: float) -> None:
        spec = registry[node]
        async with semaphore:
            started = time.time()
            records[node] = FloorRecord(node, "RUNNING", spec.deps, ready, started, None, None)
            t = spec.timeout_s
            queue = queues.get(t)
            if queue is None:
                queue = queues[t] = deque()
            queue.append((loop.time() + t, node, asyncio.current_task()))  # type: ignore[arg-type]
            if t not in timers:
                timers[t] = loop.call_at(queue[0][0], check, t)
            status = "SUCCESS"
            value = None
            try:
                value = await spec.fn()
            except asyncio.CancelledError:
                if node not in expired:
                    raise
                status = "TIMEOUT"
            except Exception:
                status = "FAILED"
            now = time.time()
            records[node] = FloorRecord(node, status, spec.deps, ready, started, now, value)
        if status == "SUCCESS":
            sorter.done(node)
            spawn(sorter.get_ready(), now)
        else:  # its descendants never become ready: record them as skipped
            if not children:
                for name in graph:
                    children[name] = []
                for name, deps in graph.items():
                    for dep in deps:
                        children[dep].append(name)
            stack = list(children[node])
            while stack:
                child = stack.pop()
                if child not in records:
                    records[child] = FloorRecord(
                        child, "SKIPPED", graph[child], None, None, None, None
                    )
                    stack.extend(children[child])
                    ended(child)
        ended(node)

    def spawn(nodes: tuple[str, ...], now: float) -> None:
        for node in nodes:
            attempt = loop.create_task(run(node, now))
            tasks.add(attempt)
            attempt.add_done_callback(tasks.discard)

    if graph:
        spawn(sorter.get_ready(), time.time())
        await finished
    return records


def floor_report(records: Mapping[str, FloorRecord], origin: float) -> dict[str, Any]:
    """The report's per-task part: fourteen keys per task, ISO stamps."""
    with gc_paused():  # as flowrun's report: none of what it makes is garbage
        return _report(records, origin)


def _report(records: Mapping[str, FloorRecord], origin: float) -> dict[str, Any]:
    tasks: dict[str, Any] = {}
    finishes: dict[float | None, str | None] = {None: None}
    for name, r in records.items():
        ready, started, ended = r.ready_at, r.started_at, r.finished_at
        ready_text = finishes.get(ready)
        if ready_text is None and ready is not None:
            ready_text = _iso(ready)
        ended_text = finishes[ended] = _iso(ended)
        tasks[name] = {
            "status": r.status,
            "deps": list(r.deps),
            "attempts": 0 if started is None else 1,
            "ready_at": ready_text,
            "started_at": _iso(started),
            "finished_at": ended_text,
            "offset_s": None if started is None else started - origin,
            "queued_s": None if started is None or ready is None else started - ready,
            "duration_s": None if started is None or ended is None else ended - started,
            "result": r.result,
            "error": None,
            "skipped_because": None,
            "teardown": None,
            "resources": {},
        }
    return {"tasks": tasks}


def floor_whole_s(graph: workloads.Graph, max_parallel: int) -> float:
    """Seconds of one whole floor path (register, run, report) on ``graph``; checks it."""

    async def main() -> tuple[float, dict[str, Any]]:
        start = time.perf_counter()
        registry = register_noop(graph)
        origin = time.time()
        records = await floor_run(registry, max_parallel)
        report = floor_report(records, origin)
        return time.perf_counter() - start, report

    seconds, report = asyncio.run(main())
    statuses = [entry["status"] for entry in report["tasks"].values()]
    if len(statuses) != len(graph) or set(statuses) != {"SUCCESS"}:
        raise RuntimeError("the floor lost or failed tasks")
    return seconds
