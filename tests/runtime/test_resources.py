"""Per-resource limits: ``@task(resources=...)`` capped by ``SchedulerConfig(resources=...)``."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from flowrun import (
    InvalidOptionError,
    InvalidResourceError,
    SchedulerConfig,
    TaskRegistry,
    build_default_engine,
    task,
)
from flowrun.engine import Engine


class Counter:
    """How many tasks hold each resource right now, and the most that ever did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now: dict[str, int] = defaultdict(int)
        self.peak: dict[str, int] = defaultdict(int)
        self.order: list[str] = []

    def enter(self, name: str, held: dict[str, int]) -> None:
        with self._lock:
            self.order.append(name)
            for resource, amount in held.items():
                self.now[resource] += amount
                self.peak[resource] = max(self.peak[resource], self.now[resource])

    def leave(self, held: dict[str, int]) -> None:
        with self._lock:
            for resource, amount in held.items():
                self.now[resource] -= amount


async def _nothing() -> None: ...


def _engine(registry: TaskRegistry, **config: Any) -> Engine:
    return build_default_engine(registry=registry, config=SchedulerConfig(**config))


async def _report(engine: Engine) -> dict[str, Any]:
    return engine.get_run_report(await asyncio.wait_for(engine.run_once("r"), 20))


class TestCaps:
    @pytest.mark.asyncio
    async def test_a_cap_is_never_exceeded_by_sync_and_async_tasks(
        self, registry: TaskRegistry
    ) -> None:
        counter = Counter()
        for n in range(12):
            held = {"docker": 1 + n % 2} if n % 3 else {"docker": 1, "db": 1}

            if n % 2:

                @task(name=f"t{n}", resources=held, registry=registry)
                async def job(held: dict[str, int] = held, n: int = n) -> None:
                    counter.enter(f"t{n}", held)
                    await asyncio.sleep(0.01)
                    counter.leave(held)

            else:

                @task(name=f"t{n}", resources=held, registry=registry)
                def sync_job(held: dict[str, int] = held, n: int = n) -> None:
                    counter.enter(f"t{n}", held)
                    threading.Event().wait(0.01)
                    counter.leave(held)

        report = await _report(_engine(registry, max_parallel=8, resources={"docker": 3, "db": 1}))
        assert report["status"] == "SUCCESS"
        assert len(counter.order) == 12
        assert counter.peak["docker"] == 3
        assert counter.peak["db"] == 1

    @pytest.mark.asyncio
    async def test_resources_are_given_back_on_failure_timeout_and_retry_delay(
        self, registry: TaskRegistry
    ) -> None:
        counter = Counter()
        held = {"docker": 1}
        attempts: dict[str, int] = defaultdict(int)

        @task(resources=held, retries=1, retry_delay_s=0.2, registry=registry)
        async def flaky() -> None:
            attempts["flaky"] += 1
            counter.enter("flaky", held)
            try:
                if attempts["flaky"] == 1:
                    raise ConnectionError("first")
            finally:
                counter.leave(held)

        @task(resources=held, timeout_s=0.05, registry=registry)
        async def slow() -> None:
            counter.enter("slow", held)
            try:
                await asyncio.sleep(5)
            finally:
                counter.leave(held)

        @task(resources=held, registry=registry)
        async def broken() -> None:
            counter.enter("broken", held)
            counter.leave(held)
            raise ValueError("no")

        @task(resources=held, registry=registry)
        async def fine() -> str:
            counter.enter("fine", held)
            await asyncio.sleep(0.01)
            counter.leave(held)
            return "ok"

        report = await _report(_engine(registry, resources={"docker": 1}))
        tasks = report["tasks"]
        assert tasks["flaky"]["status"] == "SUCCESS"
        assert tasks["slow"]["status"] == "TIMED_OUT"
        assert tasks["broken"]["status"] == "FAILED"
        assert tasks["fine"]["result"] == "ok"
        assert counter.peak["docker"] == 1
        # While flaky waited out its retry delay, the others held the docker in turn.
        assert counter.order.index("fine") < len(counter.order) - 1
        assert counter.order[-1] == "flaky"

    @pytest.mark.asyncio
    async def test_a_sync_call_abandoned_by_its_timeout_gives_its_resources_back(
        self, registry: TaskRegistry
    ) -> None:
        release = threading.Event()

        @task(resources={"docker": 1}, timeout_s=0.05, registry=registry)
        def hangs() -> None:
            release.wait(5)

        @task(resources={"docker": 1}, registry=registry)
        def after() -> str:
            return "ran"

        try:
            report = await _report(_engine(registry, resources={"docker": 1}))
        finally:
            release.set()
        assert report["tasks"]["hangs"]["status"] == "TIMED_OUT"
        assert report["tasks"]["after"]["result"] == "ran"

    @pytest.mark.asyncio
    async def test_teardowns_hold_the_tasks_resources(self, registry: TaskRegistry) -> None:
        counter = Counter()
        held = {"docker": 1}
        for n in range(4):

            @task(name=f"server{n}", resources=held, registry=registry)
            async def server(n: int = n) -> AsyncIterator[int]:
                counter.enter(f"up{n}", held)
                await asyncio.sleep(0.01)
                counter.leave(held)
                yield n
                counter.enter(f"down{n}", held)
                await asyncio.sleep(0.01)
                counter.leave(held)

        report = await _report(_engine(registry, resources={"docker": 2}))
        assert report["status"] == "SUCCESS"
        assert [report["tasks"][f"server{n}"]["teardown"]["status"] for n in range(4)] == [
            "SUCCESS"
        ] * 4
        assert counter.peak["docker"] == 2
        assert len(counter.order) == 8

    @pytest.mark.asyncio
    async def test_a_cancelled_run_ends_with_tasks_parked_for_a_resource(
        self, registry: TaskRegistry
    ) -> None:
        for n in range(3):

            @task(name=f"t{n}", resources={"docker": 1}, registry=registry)
            async def job() -> None:
                await asyncio.sleep(5)

        engine = _engine(registry, resources={"docker": 1})
        run = asyncio.ensure_future(engine.run_once("r"))
        await asyncio.sleep(0.05)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert engine.last_run_id is not None
        report = engine.get_run_report(engine.last_run_id)
        assert report["counts"]["CANCELLED"] == 3


class TestNoHeadOfLineBlocking:
    @pytest.mark.asyncio
    async def test_a_task_that_fits_starts_while_a_higher_priority_one_waits(
        self, registry: TaskRegistry
    ) -> None:
        gate = asyncio.Event()
        started: list[str] = []

        # The gate offers them longest path first: ``holder`` takes the docker, then
        # ``blocked`` needs it and waits, and ``free`` (which needs none) starts meanwhile;
        # it is what lets ``holder`` end. Waiting for ``blocked`` would hang the run.
        @task(resources={"docker": 1}, registry=registry)
        async def holder() -> None:
            started.append("holder")
            await gate.wait()

        @task(resources={"docker": 1}, registry=registry)
        async def blocked() -> None:
            started.append("blocked")

        for name, parent in [("h1", "holder"), ("h2", "h1"), ("h3", "h2")]:  # a path of 4
            task(name=name, deps=[parent], registry=registry)(_nothing)
        for name, parent in [("b1", "blocked"), ("b2", "b1")]:  # a path of 3
            task(name=name, deps=[parent], registry=registry)(_nothing)

        @task(resources={"db": 1}, registry=registry)
        async def free() -> None:
            started.append("free")
            gate.set()

        engine = _engine(registry, max_parallel=2, resources={"docker": 1, "db": 1})
        report = await _report(engine)
        assert report["status"] == "SUCCESS"
        assert started == ["holder", "free", "blocked"]

    @pytest.mark.asyncio
    async def test_the_longest_path_still_goes_first_among_those_that_fit(
        self, registry: TaskRegistry
    ) -> None:
        order: list[str] = []

        @task(resources={"docker": 1}, registry=registry)
        async def short() -> None:
            order.append("short")

        @task(resources={"docker": 1}, registry=registry)
        async def long() -> None:
            order.append("long")

        @task(deps=[long], registry=registry)
        async def after_long() -> None: ...

        await _report(_engine(registry, resources={"docker": 1}))
        assert order == ["long", "short"]

    @pytest.mark.asyncio
    async def test_a_big_task_waits_for_room_while_small_ones_fill_it(
        self, registry: TaskRegistry
    ) -> None:
        counter = Counter()
        for name, amount in [("big", 2), ("small1", 1), ("small2", 1), ("small3", 1)]:
            held = {"docker": amount}

            @task(name=name, resources=held, registry=registry)
            def job(held: dict[str, int] = held, name: str = name) -> None:
                counter.enter(name, held)
                threading.Event().wait(0.02)
                counter.leave(held)

        report = await _report(_engine(registry, resources={"docker": 2}))
        assert report["status"] == "SUCCESS"
        assert counter.peak["docker"] == 2
        assert sorted(counter.order) == ["big", "small1", "small2", "small3"]


class TestValidation:
    @pytest.mark.parametrize(
        ("resources", "message"),
        [
            ({"docker": 0}, r"task 'job': resources\['docker'\]=0 is invalid: an amount"),
            ({"docker": 1.5}, r"resources\['docker'\]=1.5 is invalid"),
            ({"docker": True}, r"resources\['docker'\]=True is invalid"),
            ({"": 1}, r"resource names are non-empty strings"),
            ({1: 1}, r"resource names are non-empty strings, got 1"),
            (["docker"], r"resources=\['docker'\] is invalid: a mapping"),
        ],
    )
    def test_bad_amounts_and_names_are_refused_at_decoration(
        self, registry: TaskRegistry, resources: Any, message: str
    ) -> None:
        with pytest.raises(InvalidResourceError, match=message) as caught:

            @task(resources=resources, registry=registry)
            def job() -> None: ...

        assert isinstance(caught.value, InvalidOptionError)
        assert isinstance(caught.value, ValueError)
        assert caught.value.task == "job"
        assert registry.names() == []

    def test_the_error_names_the_resource(self, registry: TaskRegistry) -> None:
        with pytest.raises(InvalidResourceError) as caught:
            task(resources={"docker": -1}, registry=registry)(lambda: None)
        assert caught.value.resource == "docker"
        assert caught.value.value == -1

    @pytest.mark.parametrize("caps", [{"docker": 0}, {"docker": "2"}, {"": 2}, "docker=2"])
    def test_bad_caps_are_refused_by_the_config(self, caps: Any) -> None:
        with pytest.raises(InvalidResourceError) as caught:
            SchedulerConfig(resources=caps)
        assert caught.value.task is None

    def test_the_config_keeps_a_read_only_copy_of_its_caps(self) -> None:
        caps = {"docker": 2}
        config = SchedulerConfig(resources=caps)
        caps["docker"] = 5
        assert config.resources == {"docker": 2}
        with pytest.raises(TypeError):
            config.resources["docker"] = 3  # type: ignore[index]

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("caps", "message"),
        [
            ({}, r"task 'job': resources\['docker'\]=2 is invalid: no cap is set for 'docker'"),
            ({"db": 1}, r"no cap is set for 'docker'"),
            ({"docker": 1}, r"resources\['docker'\]=2 is invalid: more than its cap of 1"),
        ],
    )
    async def test_a_resource_without_a_cap_or_above_it_is_refused_before_the_run(
        self, registry: TaskRegistry, caps: dict[str, int], message: str
    ) -> None:
        ran: list[str] = []

        @task(registry=registry)
        async def first() -> None:
            ran.append("first")

        @task(resources={"docker": 2}, registry=registry)
        async def job() -> None:
            ran.append("job")

        engine = _engine(registry, resources=caps)
        with pytest.raises(InvalidResourceError, match=message) as caught:
            await engine.run_once("r")
        assert caught.value.task == "job"
        assert caught.value.resource == "docker"
        assert ran == []
        assert engine.last_run_id is None


class TestVisibility:
    @pytest.mark.asyncio
    async def test_the_report_has_the_caps_the_executor_and_each_tasks_resources(
        self, registry: TaskRegistry
    ) -> None:
        @task(resources={"docker": 1, "db": 1}, registry=registry)
        def database() -> Iterator[str]:
            yield "postgres://"

        @task(deps=[database], registry=registry)
        async def token() -> str:
            return "t"

        report = await _report(_engine(registry, resources={"docker": 2, "db": 1}))
        assert report["executor"] == "DaemonThreadPool"
        assert report["resources"] == {"docker": 2, "db": 1}
        assert report["tasks"]["database"]["resources"] == {"db": 1, "docker": 1}
        assert report["tasks"]["token"]["resources"] == {}

    def test_render_shows_what_each_task_holds_and_the_caps(self, registry: TaskRegistry) -> None:
        @task(resources={"docker": 1, "db": 2}, timeout_s=5, registry=registry)
        def database() -> None: ...

        @task(deps=[database], registry=registry)
        def migrate() -> None: ...

        engine = _engine(registry, resources={"docker": 2, "db": 2})
        dag = engine.build_dag("setup")
        assert dag.render().splitlines()[2] == "    database (sync, timeout 5s, db=2 docker=1)"
        assert engine.display_dag("setup").splitlines()[:2] == [
            "dag 'setup': 2 tasks in 2 levels",
            "  resources db=2 docker=2",
        ]
        text = dag.render(executor="ClientExecutor", resources={"docker": 2})
        assert text.splitlines()[1] == "  sync tasks in ClientExecutor; resources docker=2"
