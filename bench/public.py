"""Target 7: the public path as users write it, against the bare graphlib + asyncio loop.

One user run is what the README shows, phase by phase:

1. registration: a loop of ``@task(name=..., deps=[...], timeout_s=30, registry=...)``
   over one ``async def`` (the README's family of tasks), into a fresh ``TaskRegistry``;
2. ``build_default_engine(registry=..., config=SchedulerConfig(max_parallel=...))`` and
   ``await engine.run_once(...)``;
3. ``engine.get_run_report(run_id)``.

The other side is ``bench.reference.run_minimal`` on the same graph and bound: one asyncio
task per ready node, a semaphore, no records. Both sides run in the same process, paired
and interleaved (alternating which goes first), a full collection before each, the garbage
collector enabled on both; one warm-up pair per workload is thrown away. Every figure is a
median over the pairs. The phases are reported as fractions of the bare loop's wall, so a
workload's three phase rows add up to about its whole-path ratio (medians do not add
exactly).
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import workloads
from bench._common import Result, Settings, median, median_of_ratios, paired
from bench.floor import floor_whole_s
from bench.reference import run_minimal
from flowrun import SchedulerConfig, TaskRegistry, build_default_engine, task

#: Every task declares it, as the README's tasks do; no task comes near it.
TIMEOUT_S = 30
DAG = "public"


async def _noop() -> None:
    return None


async def _sleep_10ms() -> None:
    await asyncio.sleep(0.01)


def register_noop(graph: workloads.Graph) -> TaskRegistry:
    """A fresh registry holding ``graph``, one no-op ``async def`` per task, as a user loop."""
    registry = TaskRegistry()
    for name, deps in graph.items():

        @task(name=name, deps=list(deps), timeout_s=TIMEOUT_S, registry=registry)
        async def _body() -> None:
            return None

    return registry


def register_sleep(graph: workloads.Graph) -> TaskRegistry:
    """Like ``register_noop``, each task sleeping 10 ms."""
    registry = TaskRegistry()
    for name, deps in graph.items():

        @task(name=name, deps=list(deps), timeout_s=TIMEOUT_S, registry=registry)
        async def _body() -> None:
            await asyncio.sleep(0.01)

    return registry


@dataclass(frozen=True)
class Workload:
    """One row group: a graph, how its tasks are registered, the bound and the target."""

    label: str
    graph: workloads.Graph
    register: Callable[[workloads.Graph], TaskRegistry]
    body: Callable[[], Any]
    max_parallel: int
    limit: float


@dataclass(frozen=True)
class Phases:
    """Seconds of each phase of one user run."""

    register_s: float
    run_s: float
    report_s: float

    @property
    def total_s(self) -> float:
        return self.register_s + self.run_s + self.report_s


def user_run(workload: Workload) -> Phases:
    """One run of the public path; checks that the report has every task as SUCCESS."""
    graph = workload.graph

    async def main() -> tuple[Phases, TaskRegistry, dict[str, Any]]:
        t0 = time.perf_counter()
        registry = workload.register(graph)
        t1 = time.perf_counter()
        engine = build_default_engine(
            registry=registry, config=SchedulerConfig(max_parallel=workload.max_parallel)
        )
        run_id = await engine.run_once(DAG)
        t2 = time.perf_counter()
        report = engine.get_run_report(run_id)
        t3 = time.perf_counter()
        return Phases(t1 - t0, t2 - t1, t3 - t2), registry, report

    phases, registry, report = asyncio.run(main())
    n = len(graph)
    if len(registry) != n or any(spec.timeout_s != TIMEOUT_S for spec in registry):
        raise RuntimeError("the registry does not hold every task with its timeout")
    ok = report["counts"]["SUCCESS"]
    if len(report["tasks"]) != n or ok != n:
        raise RuntimeError(f"the report has {ok} successes out of {len(report['tasks'])}, not {n}")
    return phases


def bare_run(workload: Workload) -> float:
    """Seconds of one run of the bare loop on the same graph and bound."""
    graph = workload.graph

    async def main() -> tuple[float, dict[str, Any]]:
        start = time.perf_counter()
        fns = dict.fromkeys(graph, workload.body)
        results = await run_minimal(graph, fns, workload.max_parallel)
        return time.perf_counter() - start, results

    seconds, results = asyncio.run(main())
    if len(results) != len(graph):
        raise RuntimeError("the bare loop lost tasks")
    return seconds


def measure(workload: Workload, reps: int) -> tuple[list[Phases], list[float]]:
    """``reps`` interleaved pairs (public path, bare loop) after one warm-up pair."""
    gc.collect()
    user_run(workload)
    bare_run(workload)
    user: list[Phases] = []

    def one_user_run() -> float:
        phases = user_run(workload)
        user.append(phases)
        return phases.total_s

    _, bare = paired(one_user_run, lambda: bare_run(workload), reps)
    return user, bare


def workload_set(quick: bool) -> list[Workload]:
    """The issue's four workloads (the same in quick and full runs)."""
    del quick  # the shapes are small enough for CI; only the repetitions change
    return [
        Workload(
            "10k independent",
            workloads.independent(10_000),
            register_noop,
            _noop,
            10_000,
            1.5,
        ),
        Workload("2k chain", workloads.chain(2_000), register_noop, _noop, 100, 1.5),
        Workload(
            "5k layered",
            workloads.layered(5_000, parents=3),
            register_noop,
            _noop,
            100,
            1.5,
        ),
        Workload(
            "500 x sleep(10 ms)",
            workloads.independent(500),
            register_sleep,
            _sleep_10ms,
            100,
            1.05,
        ),
    ]


def rows_for(workload: Workload, user: list[Phases], bare: list[float]) -> list[Result]:
    """The whole-path row (against its target) and one informative row per phase."""
    n = len(workload.graph)
    label = workload.label
    whole = [p.total_s for p in user]
    details: dict[str, Any] = {
        "tasks": n,
        "max_parallel": workload.max_parallel,
        "reps": len(bare),
        "bare_s": median(bare),
        "bare_us_per_task": median(bare) / n * 1e6,
        "whole_s": median(whole),
        "register_us_per_task": median([p.register_s for p in user]) / n * 1e6,
        "run_us_per_task": median([p.run_s for p in user]) / n * 1e6,
        "report_us_per_task": median([p.report_s for p in user]) / n * 1e6,
    }
    rows = [
        Result(
            "7",
            f"public path / bare loop: {label} (max_parallel={workload.max_parallel:,})",
            median_of_ratios(whole, bare),
            workload.limit,
            note=(
                f"{details['register_us_per_task']:.1f} + {details['run_us_per_task']:.1f} + "
                f"{details['report_us_per_task']:.1f} us/task (register + run + report) "
                f"vs {details['bare_us_per_task']:.1f} for the bare loop"
            ),
            details=details,
        )
    ]
    phases: list[tuple[str, Callable[[Phases], float]]] = [
        ("registration", lambda p: p.register_s),
        ("build_default_engine + run_once", lambda p: p.run_s),
        ("get_run_report", lambda p: p.report_s),
    ]
    for phase, pick in phases:
        rows.append(
            Result(
                "7",
                f"  {label}: {phase}",
                median_of_ratios([pick(p) for p in user], bare),
                None,
                details={"us_per_task": median([pick(p) for p in user]) / n * 1e6},
            )
        )
    return rows


#: One fresh interpreter's registration of 10k tasks, as a user's conftest or module does at
#: import: it prints the seconds the loop took.
_FRESH_REGISTRATION = """
import time
from bench import workloads
from bench.public import register_noop
graph = workloads.independent(10_000)
start = time.perf_counter()
registry = register_noop(graph)
print(time.perf_counter() - start)
assert len(registry) == len(graph)
"""


def fresh_registration_s(reps: int) -> list[float]:
    """Seconds per task of registering 10k tasks, each time in a fresh interpreter.

    A user's tasks are registered once, when their module is imported into a new
    process: measured there, the figure carries neither the warm caches nor the grown
    heap of the benchmark process that ran the other targets before it.
    """
    root = Path(__file__).resolve().parent.parent
    seconds = []
    for _ in range(reps):
        out = subprocess.run(
            [sys.executable, "-c", _FRESH_REGISTRATION],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        seconds.append(float(out.split()[-1]) / 10_000)
    return seconds


def aiodag_run(workload: Workload) -> float | None:
    """Seconds of one run of aiodag (the issue's point of comparison) on the same graph, or
    None when it is not installed.

    aiodag's whole path is its decoration plus its run: one ``aiodag.task`` per node,
    called with its parents' tasks, then a gather. It has no concurrency bound, no
    timeouts, no records and no report, so it does less than either side here.
    """
    try:
        import aiodag  # type: ignore[import-untyped]
    except ImportError:
        return None
    graph, body = workload.graph, workload.body

    # aiodag binds a node's parents to its parameters by name: one function per arity,
    # decorated once and called once per node, as aiodag's own examples do.
    async def root() -> None:
        await body()

    async def child(a: object) -> None:
        await body()

    async def grandchild(a: object, b: object, c: object) -> None:
        await body()

    by_arity = {0: root, 1: child, 3: grandchild}

    async def main() -> float:
        start = time.perf_counter()
        nodes = {k: aiodag.task(fn) for k, fn in by_arity.items()}
        tasks: dict[str, Any] = {}
        for name, deps in graph.items():
            tasks[name] = nodes[len(deps)](*[tasks[d] for d in deps])
        await asyncio.gather(*tasks.values())
        return time.perf_counter() - start

    return asyncio.run(main())


def aiodag_row(workload: Workload, reps: int) -> Result | None:
    """aiodag against the bare loop on ``workload`` (information, no target)."""
    if aiodag_run(workload) is None:  # also the warm-up
        return None
    theirs, bare = paired(lambda: aiodag_run(workload) or 0.0, lambda: bare_run(workload), reps)
    return Result(
        "7",
        f"  {workload.label}: aiodag (no bound, no records, no report) / bare loop",
        median_of_ratios(theirs, bare),
        None,
        details={"reps": reps, "aiodag_s": median(theirs)},
    )


def floor_row(workload: Workload, reps: int) -> Result:
    """The floor (``bench.floor``) against the bare loop on ``workload`` (information)."""
    graph, bound = workload.graph, workload.max_parallel
    floor_whole_s(graph, bound)  # the warm-up
    floor, bare = paired(lambda: floor_whole_s(graph, bound), lambda: bare_run(workload), reps)
    return Result(
        "7",
        f"  {workload.label}: the floor (the bare loop plus the guarantees) / bare loop",
        median_of_ratios(floor, bare),
        None,
        note="bench/floor.py: the least the guarantees cost on the bare loop's structure",
        details={"reps": reps, "floor_s": median(floor)},
    )


def target_7(settings: Settings) -> list[Result]:
    """The public path: registration, run and report against the bare loop."""
    rows: list[Result] = []
    in_process: list[float] = []
    for workload in workload_set(settings.quick):
        sleeps = workload.body is _sleep_10ms
        reps = settings.reps * 2 + 1 if sleeps else settings.reps
        user, bare = measure(workload, reps)
        rows.extend(rows_for(workload, user, bare))
        # aiodag has no concurrency bound: on the bounded sleep workload it would sleep
        # all 500 at once, which compares nothing.
        theirs = None if sleeps else aiodag_row(workload, reps)
        if theirs is not None:
            rows.append(theirs)
        if not sleeps:
            rows.append(floor_row(workload, reps))
        if workload.max_parallel == 10_000:
            in_process = [p.register_s / len(workload.graph) for p in user]
    fresh = fresh_registration_s(max(3, settings.reps))
    rows.append(
        Result(
            "7",
            "registration: 10k @task(...) from one function, in a fresh process",
            median(fresh) * 1e6,
            3.0,
            unit="us/task",
            note=(
                "the README's family-of-tasks loop, name, deps and timeout_s on every task, "
                f"at import in a new interpreter; {median(in_process) * 1e6:.1f} us/task "
                "inside the benchmark process, after the targets before it"
            ),
            details={"reps": len(fresh), "in_process_us_per_task": median(in_process) * 1e6},
        )
    )
    return rows
