"""The benchmark's own pieces: the synthetic suite's figures and the reference scheduler."""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from bench import fixed_cost, floor, public, workloads, xdist_once
from bench.reference import run_minimal
from bench.suite import make_suite


def test_the_synthetic_suite_has_the_issues_figures() -> None:
    suite = make_suite()
    assert len(suite.steps) == 40
    assert {step.layer for step in suite.steps} == set(range(6))
    assert all(1 <= len(step.deps) <= 3 for step in suite.steps if step.layer)
    assert all(0.05 <= step.duration_s <= 0.4 for step in suite.steps)
    assert round(suite.critical_path_s, 3) == 1.58
    assert round(suite.serial_s, 3) == 8.76
    assert len(suite.tests) == 200
    assert all(1 <= len(needs) <= 3 for needs in suite.tests)
    needed = {leaf for needs in suite.tests for leaf in needs}
    used = {dep for step in suite.steps for dep in step.deps}
    assert needed == {step.name for step in suite.steps} - used  # every leaf, leaves only


def test_workloads_are_deterministic_and_topological() -> None:
    graph = workloads.layered(1_000, parents=3)
    assert graph == workloads.layered(1_000, parents=3)
    seen: set[str] = set()
    for name, deps in graph.items():
        assert set(deps) <= seen
        seen.add(name)
    assert sum(1 for deps in graph.values() if not deps) == 100  # the first layer
    assert all(len(deps) == 3 for deps in graph.values() if deps)


def test_the_minimal_scheduler_respects_dependencies_and_the_bound() -> None:
    graph = workloads.layered(300, parents=3, width=30)
    order: list[str] = []
    running = 0
    peak = 0

    def make(name: str) -> Callable[[], Coroutine[Any, Any, str]]:
        async def fn() -> str:
            nonlocal running, peak
            assert all(dep in order for dep in graph[name])
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0)
            running -= 1
            order.append(name)
            return name

        return fn

    results = asyncio.run(run_minimal(graph, {n: make(n) for n in graph}, 7))
    assert results == {n: n for n in graph}
    assert peak <= 7


def test_the_public_path_run_registers_runs_and_reports_every_task() -> None:
    graph = workloads.layered(60, parents=3, width=10)
    workload = public.Workload("small", graph, public.register_noop, public._noop, 4, 1.5)
    phases = public.user_run(workload)
    assert min(phases.register_s, phases.run_s, phases.report_s) > 0
    assert phases.total_s == phases.register_s + phases.run_s + phases.report_s
    assert public.bare_run(workload) > 0


def test_the_comparison_runs_aiodag_on_the_same_graph_with_its_dependencies() -> None:
    pytest.importorskip("aiodag")
    order: list[int] = []
    graph = workloads.layered(12, parents=3, width=4)

    async def body() -> None:
        order.append(len(order))

    workload = public.Workload("small", graph, public.register_noop, body, 4, 1.5)
    seconds = public.aiodag_run(workload)
    assert seconds is not None
    assert seconds > 0
    assert len(order) == len(graph)  # every node ran once
    row = public.aiodag_row(workload, reps=2)
    assert row is not None
    assert row.limit is None
    assert row.value > 0


def test_registration_is_timed_in_fresh_interpreters() -> None:
    seconds = public.fresh_registration_s(1)
    assert len(seconds) == 1
    assert seconds[0] > 0


def test_the_public_path_rows_pair_every_workload_with_its_phases() -> None:
    workload = public.Workload(
        "small", workloads.independent(20), public.register_sleep, public._sleep_10ms, 10, 1.05
    )
    user, bare = public.measure(workload, reps=2)
    rows = public.rows_for(workload, user, bare)
    assert [row.limit for row in rows] == [1.05, None, None, None]
    assert all(row.value is not None and row.value > 0 for row in rows)
    assert [row.figure.rsplit(": ", 1)[-1] for row in rows[1:]] == [
        "registration",
        "build_default_engine + run_once",
        "get_run_report",
    ]


def test_the_xdist_suite_is_the_same_setup_with_and_without_task(tmp_path: Path) -> None:
    plain = xdist_once.write_project(tmp_path / "plain", flowrun=False)
    flowrun = xdist_once.write_project(tmp_path / "flowrun", flowrun=True)
    tests = sorted(path.name for path in plain.glob("test_*.py"))
    assert len(tests) == 5
    assert tests == sorted(path.name for path in flowrun.glob("test_*.py"))
    assert all((plain / name).read_text() == (flowrun / name).read_text() for name in tests)
    assert sum((plain / name).read_text().count("def test_") for name in tests) == 40
    plain_conftest = (plain / "conftest.py").read_text()
    assert "flowrun" not in plain_conftest
    added = [
        line[2:]
        for line in difflib.ndiff(
            plain_conftest.splitlines(), (flowrun / "conftest.py").read_text().splitlines()
        )
        if line[:2] in ("+ ", "- ")
    ]
    assert sorted(added) == ["", "@task", "@task", "@task", "@task", "from flowrun import task"]
    assert xdist_once.serial_s() == pytest.approx(2.3)
    assert xdist_once.critical_path_s() == pytest.approx(1.5)


@pytest.mark.slow
def test_the_xdist_sides_set_up_each_resource_per_worker_or_once(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    roots = {
        flowrun: xdist_once.write_project(tmp_path / str(flowrun), flowrun=flowrun, scale=0.0)
        for flowrun in (False, True)
    }
    setups = {}
    for side in xdist_once.SIDES:
        _, count = xdist_once.run_side(roots[side.flowrun], side, workers=2)
        setups[side.label] = (count.setups, count.processes, count.teardowns)
    assert setups == {
        "plain pytest-xdist": (8, 2, 2),
        "flowrun per-worker": (8, 2, 2),
        "flowrun once": (4, 1, 1),
    }


def test_the_uncached_pass_imports_packages_that_have_no_bytecode(tmp_path: Path) -> None:
    source = Path(fixed_cost._uncompiled_copy(tmp_path / "source"))
    assert (source / "flowrun" / "__init__.py").is_file()
    assert (source / "pytest_flowrun" / "plugin.py").is_file()
    assert not list(source.rglob("*.pyc"))


def test_the_floor_runs_every_task_once_after_its_dependencies() -> None:
    graph = workloads.layered(60, parents=3, width=10)
    registry = floor.register_noop(graph)
    assert all(spec.timeout_s == 30 for spec in registry.values())
    records = asyncio.run(floor.floor_run(registry, 4))
    assert {r.status for r in records.values()} == {"SUCCESS"}
    for name, deps in graph.items():
        assert all(records[d].finished_at <= records[name].started_at for d in deps)  # type: ignore[operator]
    assert floor.floor_whole_s(graph, 4) > 0


def test_the_floors_timeouts_are_real_and_skip_the_descendants() -> None:
    registry: dict[str, floor.FloorSpec] = {}

    @floor.floor_task(name="slow", deps=[], timeout_s=0.05, registry=registry)
    async def slow() -> None:
        await asyncio.sleep(30)

    @floor.floor_task(name="child", deps=["slow"], timeout_s=1, registry=registry)
    async def child() -> None:
        return None

    @floor.floor_task(name="grandchild", deps=["child"], timeout_s=1, registry=registry)
    async def grandchild() -> None:
        return None

    @floor.floor_task(name="other", deps=[], timeout_s=1, registry=registry)
    async def other() -> str:
        return "ok"

    records = asyncio.run(floor.floor_run(registry, 2))  # "slow" would end SUCCESS in 30 s
    assert {name: r.status for name, r in records.items()} == {
        "slow": "TIMEOUT",
        "child": "SKIPPED",
        "grandchild": "SKIPPED",
        "other": "SUCCESS",
    }
    report = floor.floor_report(records, records["slow"].started_at or 0.0)
    assert report["tasks"]["other"]["result"] == "ok"
    assert len(report["tasks"]["slow"]) == 14
    with pytest.raises(ValueError, match="'bad'"):
        floor.floor_task(name="bad", deps=[], timeout_s=0, registry=registry)(slow)


def test_the_floor_row_is_information_beside_the_public_path() -> None:
    workload = public.Workload(
        "small", workloads.chain(30), public.register_noop, public._noop, 4, 1.5
    )
    row = public.floor_row(workload, reps=2)
    assert row.limit is None
    assert row.value is not None
    assert row.value > 0
    assert "floor" in row.figure
