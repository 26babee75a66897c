"""The DAG builder: validation before anything runs, and a deterministic topological order."""

from __future__ import annotations

import gc
import random

import pytest

from flowrun.dag import Dag, build_dag
from flowrun.engine import Engine
from flowrun.errors import (
    CycleError,
    FlowrunError,
    MissingDependencyError,
    SelfDependencyError,
    UnknownTaskError,
)
from flowrun.task import TaskRegistry, TaskSpec, task


def spec(name: str, *deps: str) -> TaskSpec:
    """A bare spec, built without ``@task`` so that invalid graphs can be expressed."""
    return TaskSpec(name=name, fn=lambda: None, deps=deps)


class TestOrder:
    def test_topological_with_registration_order_breaking_ties(self) -> None:
        dag = build_dag(
            "d",
            [spec("report", "clean", "fetch_b"), spec("fetch_b"), spec("clean", "fetch_a"),
             spec("fetch_a")],
        )  # fmt: skip
        assert dag.names == ["fetch_b", "fetch_a", "clean", "report"]

    def test_same_input_same_order(self) -> None:
        specs = [spec(f"t{i}", *([f"t{i - 3}"] if i >= 3 else [])) for i in range(12)]
        orders = {tuple(build_dag("d", specs).names) for _ in range(5)}
        assert len(orders) == 1

    def test_parents_first_registration_keeps_its_order(self) -> None:
        specs = [spec("a"), spec("b"), spec("c", "a"), spec("d", "b", "c"), spec("e")]
        assert build_dag("d", specs).names == ["a", "b", "c", "d", "e"]

    def test_order_is_the_earliest_registered_ready_task_first(self) -> None:
        """Whatever the registration order, the result is the topological order that always
        takes the earliest registered task among those whose parents are placed."""
        rng = random.Random(7)
        for _ in range(50):
            names = [f"t{i}" for i in range(15)]
            deps = {n: [m for m in names[:i] if rng.random() < 0.2] for i, n in enumerate(names)}
            rng.shuffle(names)
            specs = [spec(n, *deps[n]) for n in names]
            placed: list[str] = []
            while len(placed) < len(names):
                placed.append(
                    next(n for n in names if n not in placed and set(deps[n]) <= set(placed))
                )
            assert build_dag("d", specs).names == placed

    def test_the_garbage_collector_is_left_as_it_was(self) -> None:
        assert gc.isenabled()
        build_dag("d", [spec("a"), spec("b", "a")])
        assert gc.isenabled()
        gc.disable()
        try:
            build_dag("d", [spec("a"), spec("b", "a")])
            assert not gc.isenabled()
        finally:
            gc.enable()

    def test_edges_and_levels(self) -> None:
        dag = build_dag("d", [spec("a"), spec("b", "a"), spec("c", "a"), spec("d", "b", "c")])
        assert isinstance(dag, Dag)
        assert len(dag) == 4
        assert dag.levels() == [0, 1, 1, 2]
        assert dag.parents[dag.index["d"]] == (dag.index["b"], dag.index["c"])
        assert dag.descendants("a") == {"b", "c", "d"}
        assert dag.ancestors(["d"]) == {"a", "b", "c", "d"}
        assert dag.subgraph(["b"]).names == ["a", "b"]

    def test_critical_path_is_the_heaviest_chain(self) -> None:
        dag = build_dag("d", [spec("a"), spec("b", "a"), spec("c", "a"), spec("d", "b", "c")])
        path, total = dag.critical_path({"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0})
        assert (path, total) == (["a", "b", "d"], 7.0)
        assert build_dag("empty", []).critical_path({}) == ([], 0.0)

    def test_accepts_a_registry_snapshot(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def a() -> None: ...

        @task(deps=[a], registry=registry)
        def b() -> None: ...

        assert build_dag("d", registry.snapshot()).names == ["a", "b"]

    def test_empty(self) -> None:
        dag = build_dag("nothing", [])
        assert dag.names == []
        assert "0 tasks" in dag.render()

    def test_unknown_task_in_queries(self) -> None:
        with pytest.raises(UnknownTaskError, match="did you mean 'alpha'"):
            build_dag("d", [spec("alpha")]).descendants("alpah")


class TestBadGraphs:
    def test_missing_dependency_names_task_missing_and_close_matches(self) -> None:
        with pytest.raises(MissingDependencyError) as info:
            build_dag("d", [spec("fetch_user"), spec("email_user", "fetch_usr")])
        error = info.value
        assert isinstance(error, FlowrunError)
        assert isinstance(error, LookupError)
        assert (error.task, error.missing, error.suggestions) == (
            "email_user",
            "fetch_usr",
            ("fetch_user",),
        )
        assert str(error) == (
            "task 'email_user' depends on 'fetch_usr', which is not registered "
            "(did you mean 'fetch_user'?)"
        )

    def test_missing_dependency_without_close_match_has_no_hint(self) -> None:
        with pytest.raises(MissingDependencyError) as info:
            build_dag("d", [spec("a", "zzzz")])
        assert "did you mean" not in str(info.value)

    def test_cycle_is_shown_as_a_path(self) -> None:
        with pytest.raises(CycleError) as info:
            build_dag("d", [spec("root"), spec("a", "c"), spec("b", "a"), spec("c", "b", "root")])
        assert isinstance(info.value, FlowrunError)
        assert isinstance(info.value, ValueError)
        cycle = info.value.cycle
        assert cycle[0] == cycle[-1]
        assert sorted(cycle[:-1]) == ["a", "b", "c"]
        assert " -> ".join(cycle) in str(info.value)
        assert "a -> c -> b -> a" in str(info.value)  # each task depends on the next

    def test_two_task_cycle(self) -> None:
        with pytest.raises(CycleError, match="x -> y -> x"):
            build_dag("d", [spec("x", "y"), spec("y", "x")])

    def test_self_dependency(self) -> None:
        with pytest.raises(SelfDependencyError, match="'solo' depends on itself") as info:
            build_dag("d", [spec("solo", "solo")])
        assert isinstance(info.value, CycleError)
        assert info.value.cycle == ("solo", "solo")

    def test_cycle_made_of_registered_tasks(self, registry: TaskRegistry) -> None:
        # The decorator cannot see a cycle through names registered later: the DAG does.
        @task(deps=["b"], registry=registry)
        def a() -> None: ...

        @task(deps=[a], registry=registry)
        def b() -> None: ...

        with pytest.raises(CycleError, match="a -> b -> a"):
            build_dag("d", registry.snapshot())


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("declare", "error"),
    [
        (lambda r: task(deps=["missing"], registry=r)(lambda: None), MissingDependencyError),
        (
            lambda r: (
                task(name="p", deps=["q"], registry=r)(lambda: None),
                task(name="q", deps=["p"], registry=r)(lambda: None),
            ),
            CycleError,
        ),
        (lambda r: r.register(spec("selfish", "selfish")), SelfDependencyError),
    ],
    ids=["missing", "cycle", "self"],
)
async def test_run_once_validates_before_anything_runs(
    registry: TaskRegistry, engine: Engine, declare: object, error: type[Exception]
) -> None:
    ran: list[str] = []

    @task(registry=registry)
    def innocent() -> None:
        ran.append("innocent")

    declare(registry)  # type: ignore[operator]
    with pytest.raises(error):
        await engine.run_once("d")
    with pytest.raises(error):
        engine.display_dag("d")
    assert ran == []
    assert engine.last_run_id is None  # no run was even created


class TestRender:
    def test_levels_kinds_options_and_deps(self, registry: TaskRegistry) -> None:
        @task(registry=registry, timeout_s=5)
        async def fetch() -> None: ...

        @task(registry=registry, retries=2)
        def parse() -> None: ...

        @task(deps=[fetch, parse], registry=registry)
        def store() -> None: ...

        text = build_dag("etl", registry.snapshot()).render()
        assert text.splitlines() == [
            "dag 'etl': 3 tasks in 2 levels",
            "  level 0",
            "    fetch (async, timeout 5s)",
            "    parse (sync, retries 2)",
            "  level 1",
            "    store (sync) <- fetch, parse",
        ]
