"""Load: a 10,000-task DAG, 1,000 tasks sleeping at once, and 20 runs on one engine
without memory growth; every guarantee checked as in the property tests."""

from __future__ import annotations

import asyncio
import gc
import random
import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from flowrun import SchedulerConfig, StateStore, TaskRegistry, build_default_engine, task

from ._scenario import (
    ASYNC,
    ASYNC_GEN,
    OK,
    RAISE,
    SYNC,
    SYNC_GEN,
    DagPlan,
    TaskPlan,
    check_abandoned_setups_cleaned,
    check_guarantees,
    run_plan,
)

pytestmark = pytest.mark.slow


def random_dag(n: int, seed: int, *, window: int = 200) -> list[tuple[str, ...]]:
    """Dependencies of ``n`` tasks: up to 3 parents each, among the ``window`` before it."""
    rng = random.Random(seed)
    deps: list[tuple[str, ...]] = []
    for i in range(n):
        lo = max(0, i - window)
        k = rng.randint(0, min(3, i - lo))
        deps.append(tuple(f"t{p}" for p in rng.sample(range(lo, i), k)))
    return deps


def test_a_10000_task_dag_keeps_every_guarantee() -> None:
    n = 10_000
    rng = random.Random(1)
    deps = random_dag(n, seed=2)
    has_children = {d for ds in deps for d in ds}
    tasks = []
    for i, ds in enumerate(deps):
        name = f"t{i}"
        kind = rng.choice([ASYNC] * 8 + [SYNC, ASYNC_GEN])
        # Failing leaves, and inner tasks failing near the end, so that skips happen at
        # scale without skipping most of the graph.
        failing = rng.random() < (0.02 if name not in has_children or i > n - 300 else 0)
        tasks.append(TaskPlan(name, ds, kind, RAISE if failing else OK))
    plan = DagPlan(tuple(tasks), max_parallel=64)

    out = asyncio.run(run_plan(plan))

    check_guarantees(out)
    check_abandoned_setups_cleaned(out)
    assert out.report is not None
    counts = out.report["counts"]
    assert counts["SUCCESS"] > n * 0.8
    assert counts["FAILED"] > 0
    assert counts["SKIPPED"] > 0


def test_1000_tasks_sleep_concurrently_and_keep_every_guarantee() -> None:
    n, sleep_s = 1000, 0.5
    plan = DagPlan(
        tuple(TaskPlan(f"t{i}", kind=ASYNC, duration_s=sleep_s) for i in range(n)),
        max_parallel=n,
    )

    out = asyncio.run(run_plan(plan))

    check_guarantees(out)
    live = peak = 0
    for e in out.log.snapshot():
        live += {"start": 1, "end": -1}.get(e.kind, 0)
        peak = max(peak, live)
    assert peak == n, "the sleeping tasks did not all run at once"
    assert out.report is not None
    # All at once, so the run takes about one sleep, not a thousand (a ratio, generous).
    assert out.report["duration_s"] < sleep_s * 4


@pytest.fixture
def quiet_threads() -> Iterator[None]:
    """Fail if the test leaves threads behind (closed pools let their workers go)."""
    before = threading.active_count()
    yield
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= before


def build_mixed_registry(n: int) -> TaskRegistry:
    """``n`` tasks of every kind, one in 17 failing (so skips and errors are recorded)."""
    registry = TaskRegistry()
    for i, ds in enumerate(random_dag(n, seed=3, window=30)):
        name, kind = f"t{i}", (SYNC, ASYNC, SYNC_GEN, ASYNC_GEN)[i % 4]
        fails = i % 17 == 16
        if kind == SYNC:

            def body(fails: bool = fails) -> str:
                if fails:
                    raise ValueError("injected")
                return "x" * 100

        elif kind == ASYNC:

            async def body(fails: bool = fails) -> str:  # type: ignore[misc]
                await asyncio.sleep(0)
                if fails:
                    raise ValueError("injected")
                return "x" * 100

        elif kind == SYNC_GEN:

            def body(fails: bool = fails) -> Iterator[str]:  # type: ignore[misc]
                if fails:
                    raise ValueError("injected")
                yield "x" * 100

        else:

            async def body(fails: bool = fails) -> object:  # type: ignore[misc]
                if fails:
                    raise ValueError("injected")
                yield "x" * 100

        task(name=name, deps=list(ds), registry=registry)(body)
    return registry


@pytest.mark.usefixtures("quiet_threads")
def test_20_runs_on_one_engine_do_not_grow_memory() -> None:
    """The store keeps the last ``max_runs`` runs (100 by default) on purpose, so with the
    default 20 runs would all be kept and memory would grow by 15 runs' records between
    run 5 and run 20. With ``max_runs=4`` the store is full by run 5, and from then on
    anything still growing is a leak."""
    registry = build_mixed_registry(300)
    store = StateStore(max_runs=4)
    engine = build_default_engine(
        registry=registry, state_store=store, config=SchedulerConfig(max_parallel=8)
    )
    used: list[int] = []

    async def runs() -> None:
        for _ in range(20):
            run_id = await engine.run_once("memory")
            report = engine.get_run_report(run_id)
            assert report["status"] == "FAILED"
            assert report["counts"]["FAILED"] > 0
            assert report["counts"]["SUCCESS"] > 0
            del report
            gc.collect()
            used.append(tracemalloc.get_traced_memory()[0])

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        asyncio.run(runs())
    finally:
        tracemalloc.stop()

    assert len(store.run_ids()) == 4
    # The store is full from run 4 on; a run's records, errors and tracebacks are what
    # the first five runs left behind (one-time allocations included: generous).
    one_run = (used[4] - before) / 5
    # The least memory in use around run 5 and around run 20, so that one collection
    # landing late does not count as growth.
    growth = min(used[17:20]) - min(used[3:6])
    assert one_run > 0
    # A leak of even a fifteenth of a run per run would show; CPython's own caches (the
    # traceback module's) add a few hundred bytes per run.
    assert growth < one_run, f"grew {growth} bytes over 15 runs; one run is {one_run:.0f}"


def test_the_default_store_keeps_the_last_100_runs() -> None:
    """Why the memory test shrinks ``max_runs``: by default a long-lived engine holds the
    records of its last 100 runs, and no more."""
    registry = TaskRegistry()
    task(name="one", registry=registry)(lambda: "x" * 1000)
    engine = build_default_engine(registry=registry)

    async def runs() -> list[str]:
        return [await engine.run_once("tiny") for _ in range(105)]

    ids = asyncio.run(runs())
    store = engine.state_store
    assert isinstance(store, StateStore)
    assert store.max_runs == 100
    assert store.run_ids() == ids[5:]
