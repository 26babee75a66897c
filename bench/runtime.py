"""Targets 1-3: flowrun's runtime against the minimal graphlib + asyncio scheduler."""

from __future__ import annotations

import asyncio
import gc
import inspect
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from bench import workloads
from bench._common import Result, Settings, median, median_of_ratios, paired
from bench.reference import run_minimal
from flowrun import Engine, Scheduler, SchedulerConfig, TaskRegistry, TaskSpec, TaskStatus
from flowrun.task import TaskKind

#: The bound both schedulers run under in every runtime target.
MAX_PARALLEL = 100
DAG = "bench"


async def _noop() -> None:
    return None


async def _sleep_10ms() -> None:
    await asyncio.sleep(0.01)


def _block_10ms() -> None:
    time.sleep(0.01)


def make_engine(
    graph: workloads.Graph,
    fn: Callable[[], Any],
    *,
    executor: Executor | None = None,
    max_parallel: int = MAX_PARALLEL,
) -> Engine:
    """A fresh engine whose registry holds ``graph`` with ``fn`` as every task's body."""
    kind = TaskKind.ASYNC if inspect.iscoroutinefunction(fn) else TaskKind.SYNC
    registry = TaskRegistry()
    for name, deps in graph.items():
        registry.register(TaskSpec(name, fn, deps, kind=kind))
    scheduler = Scheduler(SchedulerConfig(max_parallel=max_parallel), executor=executor)
    return Engine(registry, scheduler)


def _timed(coro: Callable[[], Coroutine[Any, Any, Any]]) -> tuple[float, Any]:
    """Run ``coro()`` on a fresh loop; the seconds it took inside the loop, and its value."""

    async def main() -> tuple[float, Any]:
        start = time.perf_counter()
        value = await coro()
        return time.perf_counter() - start, value

    return asyncio.run(main())


def time_flowrun(engine: Engine, n: int) -> float:
    """Seconds of one ``run_once``; checks that all ``n`` tasks were recorded as SUCCESS."""
    seconds, run_id = _timed(lambda: engine.run_once(DAG))
    tasks = engine.state_store.get(run_id).tasks
    ok = sum(1 for record in tasks.values() if record.status is TaskStatus.SUCCESS)
    if len(tasks) != n or ok != n:
        raise RuntimeError(f"flowrun recorded {ok} successes out of {len(tasks)}, expected {n}")
    return seconds


def time_minimal(
    graph: workloads.Graph, fn: Callable[[], Any], executor: Executor | None = None
) -> float:
    fns = dict.fromkeys(graph, fn)
    seconds, results = _timed(lambda: run_minimal(graph, fns, MAX_PARALLEL, executor=executor))
    if len(results) != len(graph):
        raise RuntimeError("the minimal scheduler lost tasks")
    return seconds


def compare(
    graph: workloads.Graph,
    fn: Callable[[], Any],
    reps: int,
    executor: Executor | None = None,
) -> tuple[list[float], list[float]]:
    """Paired wall times (flowrun, minimal), a fresh engine for every flowrun run."""
    n = len(graph)
    return paired(
        lambda: time_flowrun(make_engine(graph, fn, executor=executor), n),
        lambda: time_minimal(graph, fn, executor),
        reps,
    )


def _row(
    target: str,
    figure: str,
    limit: float | None,
    flow: list[float],
    mini: list[float],
    n: int,
    note: str = "",
) -> Result:
    return Result(
        target,
        figure,
        median_of_ratios(flow, mini),
        limit,
        note=note,
        details={
            "flowrun_s": median(flow),
            "minimal_s": median(mini),
            "flowrun_us_per_task": median(flow) / n * 1e6,
            "minimal_us_per_task": median(mini) / n * 1e6,
            "reps": len(flow),
        },
    )


def target_1(settings: Settings) -> list[Result]:
    """Scheduling overhead on no-op async tasks."""
    shapes = [
        ("10k independent", workloads.independent(10_000)),
        ("chain of 2k", workloads.chain(2_000)),
        ("5k layered, 3 parents", workloads.layered(5_000, parents=3)),
    ]
    rows = []
    for label, graph in shapes:
        flow, mini = compare(graph, _noop, settings.reps)
        rows.append(_row("1", f"overhead: {label}", 1.5, flow, mini, len(graph)))
    return rows


def target_2(settings: Settings) -> list[Result]:
    """IO-bound makespan: 500 x 10 ms under max_parallel=100, async and sync."""
    graph = workloads.independent(500)
    reps = settings.reps * 2 + 1
    flow, mini = compare(graph, _sleep_10ms, reps)
    rows = [_row("2", "makespan: 500 x 10 ms async", 1.05, flow, mini, len(graph))]
    with ThreadPoolExecutor(max_workers=MAX_PARALLEL) as pool:
        list(pool.map(time.sleep, [0.005] * MAX_PARALLEL))  # start every thread up front
        flow, mini = compare(graph, _block_10ms, reps, executor=pool)
        rows.append(
            _row("2", "makespan: 500 x 10 ms sync, same pool", 1.10, flow, mini, len(graph))
        )
        own, warm = paired(
            lambda: time_flowrun(make_engine(graph, _block_10ms), len(graph)),
            lambda: time_minimal(graph, _block_10ms, pool),
            reps,
        )
    rows.append(
        _row(
            "2",
            "makespan: sync, flowrun's own pool vs minimal on a warm pool",
            None,
            own,
            warm,
            len(graph),
            note="the default: a daemon-thread pool per run, its threads started by the run",
        )
    )
    return rows


def _traced(fn: Callable[[], Any]) -> tuple[int, int, Any]:
    """Run ``fn`` under tracemalloc: (peak above the start, still held at the end, value)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        value = fn()
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base, current - base, value


def target_3(settings: Settings) -> list[Result]:
    """Scale (100k tasks, linear growth) and memory (peak, retained per task)."""
    small, big = 10_000, 100_000
    small_graph = workloads.layered(small, parents=3)
    big_graph = workloads.layered(big, parents=3)
    reps = 2 if settings.quick else 5

    def per_task(run: Callable[[workloads.Graph], float]) -> tuple[list[float], list[float]]:
        """Per-task seconds at 10k and 100k; each 100k run is paired with the median of
        three 10k runs around it, the short runs being the noisier ones."""
        per_small: list[float] = []
        per_big: list[float] = []
        for _ in range(reps):
            smalls = []
            for k in range(4):
                gc.collect()
                if k == 2:
                    per_big.append(run(big_graph) / big)
                else:
                    smalls.append(run(small_graph) / small)
            per_small.append(median(smalls))
        return per_small, per_big

    per_small, per_big = per_task(lambda g: time_flowrun(make_engine(g, _noop), len(g)))
    if not settings.quick:  # the same figure for the minimal scheduler, for context
        mini_small, mini_big = per_task(lambda g: time_minimal(g, _noop))
    rows = [
        Result(
            "3",
            "scale: per-task wall 100k / 10k layered",
            median_of_ratios(per_big, per_small),
            1.2,
            note="100k tasks validated, ran and recorded",
            details={
                "us_per_task_10k": median(per_small) * 1e6,
                "us_per_task_100k": median(per_big) * 1e6,
                "reps": reps,
            },
        )
    ]
    if not settings.quick:
        rows.append(
            Result(
                "3",
                "scale: the minimal scheduler's per-task wall 100k / 10k",
                median_of_ratios(mini_big, mini_small),
                None,
                note="CPython's own growth on the same DAGs (full garbage collections at 100k)",
                details={
                    "us_per_task_10k": median(mini_small) * 1e6,
                    "us_per_task_100k": median(mini_big) * 1e6,
                },
            )
        )

    graph = workloads.independent(small)
    fns = dict.fromkeys(graph, _noop)
    mini_peak, _, _ = _traced(lambda: asyncio.run(run_minimal(graph, fns, MAX_PARALLEL)))
    engine = make_engine(graph, _noop)
    flow_peak, retained, run_id = _traced(lambda: asyncio.run(engine.run_once(DAG)))
    if len(engine.state_store.get(run_id).tasks) != small:
        raise RuntimeError("flowrun did not record every task")
    rows.append(
        Result(
            "3",
            "memory: peak of the 10k run",
            flow_peak / mini_peak,
            1.15,
            details={"flowrun_peak_bytes": flow_peak, "minimal_peak_bytes": mini_peak},
        )
    )
    rows.append(
        Result(
            "3",
            "memory: retained per task for the report",
            retained / small,
            2048.0,
            unit="B/task",
            note="records kept by the state store and the engine after run_once",
            details={"retained_bytes": retained},
        )
    )
    return rows
