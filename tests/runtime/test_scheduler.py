"""Scheduling: event-driven starts, the parallelism limit, skips, retries and cancellation."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from flowrun.dag import build_dag
from flowrun.engine import Engine, build_default_engine
from flowrun.errors import (
    FlowrunError,
    InvalidMaxParallelError,
    InvalidOptionError,
    InvalidTimeoutError,
)
from flowrun.scheduler import Scheduler, SchedulerConfig
from flowrun.state import RunStatus, StateStore, TaskStatus
from flowrun.task import TaskRegistry, task


async def run(registry: TaskRegistry, max_parallel: int = 16) -> dict[str, Any]:
    """Run every task of ``registry`` on a fresh engine and return the report."""
    engine = build_default_engine(
        registry=registry, config=SchedulerConfig(max_parallel=max_parallel)
    )
    return engine.get_run_report(await engine.run_once("test"))


class Concurrency:
    """Counts task bodies running at once, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1


class TestEventDriven:
    @pytest.mark.asyncio
    async def test_a_child_starts_as_soon_as_its_parent_is_done(
        self, registry: TaskRegistry
    ) -> None:
        events: list[str] = []

        @task(registry=registry)
        async def quick() -> None:
            await asyncio.sleep(0.005)
            events.append("quick done")

        @task(registry=registry)
        async def slow() -> None:
            await asyncio.sleep(0.15)
            events.append("slow done")

        @task(deps=[quick], registry=registry)
        async def after_quick() -> None:
            events.append("after_quick started")

        @task(deps=[slow, after_quick], registry=registry)
        async def last() -> None:
            events.append("last started")

        report = await run(registry)
        assert report["status"] == "SUCCESS"
        # Level by level, 'after_quick' (level 1) would wait for 'slow' (level 0).
        assert events == ["quick done", "after_quick started", "slow done", "last started"]

    @pytest.mark.asyncio
    async def test_a_deep_chain_overlaps_a_slow_sibling(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        async def slow() -> None:
            await asyncio.sleep(0.2)

        previous: Any = None
        for i in range(4):
            deps = [previous] if previous is not None else []
            previous = task(name=f"step{i}", deps=deps, registry=registry)(_make_sleeper(0.01))

        report = await run(registry)
        tasks = report["tasks"]
        chain_end = tasks["step3"]["offset_s"] + tasks["step3"]["duration_s"]
        # The whole chain runs beside 'slow' instead of after it.
        assert chain_end < tasks["slow"]["duration_s"]


def _make_sleeper(seconds: float) -> Any:
    async def sleeper() -> None:
        await asyncio.sleep(seconds)

    return sleeper


class TestReadyOrder:
    @pytest.mark.asyncio
    async def test_equal_tasks_start_in_registration_order(self, registry: TaskRegistry) -> None:
        order: list[str] = []
        for name in ["delta", "alpha", "charlie", "bravo"]:
            task(name=name, registry=registry)(_recorder(order, name))
        await run(registry, max_parallel=1)
        assert order == ["delta", "alpha", "charlie", "bravo"]

    @pytest.mark.asyncio
    async def test_the_same_dag_always_runs_in_the_same_order(self, registry: TaskRegistry) -> None:
        order: list[str] = []
        names = [f"t{i}" for i in range(10)]
        for i, name in enumerate(names):
            deps = [names[i - 4]] if i >= 4 else []
            task(name=name, deps=deps, registry=registry)(_recorder(order, name))
        orders = set()
        for _ in range(3):
            order.clear()
            await run(registry, max_parallel=2)
            orders.add(tuple(order))
        assert len(orders) == 1

    @pytest.mark.asyncio
    async def test_one_engine_keeps_the_order_run_after_run(self, registry: TaskRegistry) -> None:
        # Task run times vary from run to run; the order among ready tasks must not.
        order: list[str] = []
        jitter = iter([0.004, 0.001, 0.003, 0.002, 0.0] * 4)
        for name in ["e", "d", "c", "b", "a"]:

            @task(name=name, registry=registry)
            def body(name: str = name) -> None:
                order.append(name)
                time.sleep(next(jitter))

        engine = build_default_engine(registry=registry, config=SchedulerConfig(max_parallel=1))
        orders = set()
        for _ in range(4):
            order.clear()
            await engine.run_once("d")
            orders.add("".join(order))
        assert orders == {"edcba"}

    @pytest.mark.asyncio
    async def test_expected_durations_passed_in_weigh_the_paths(
        self, registry: TaskRegistry
    ) -> None:
        order: list[str] = []
        for name in ["short", "long", "medium"]:
            task(name=name, registry=registry)(_recorder(order, name))
        engine = build_default_engine(registry=registry, config=SchedulerConfig(max_parallel=1))
        expected = {"short": 0.1, "long": 3.0, "medium": 1.0}
        async with engine.session("d", expected_s=expected):
            pass
        assert order == ["long", "medium", "short"]

    @pytest.mark.asyncio
    async def test_start_of_a_longer_path_first(self, registry: TaskRegistry) -> None:
        order: list[str] = []
        task(name="lone", registry=registry)(_recorder(order, "lone"))
        task(name="head", registry=registry)(_recorder(order, "head"))
        task(name="tail", deps=["head"], registry=registry)(_recorder(order, "tail"))
        await run(registry, max_parallel=1)
        assert order == ["head", "lone", "tail"]


def _recorder(order: list[str], name: str) -> Any:
    # A coroutine appends when the loop first runs it: in start order, even two at a time.
    async def record() -> None:
        order.append(name)

    return record


class TestParallelism:
    @pytest.mark.asyncio
    async def test_max_parallel_bounds_async_task_bodies(self, registry: TaskRegistry) -> None:
        counter = Concurrency()
        for i in range(9):

            @task(name=f"t{i}", registry=registry)
            async def body() -> None:
                with counter:
                    await asyncio.sleep(0.02)

        report = await run(registry, max_parallel=3)
        assert report["status"] == "SUCCESS"
        assert counter.peak == 3

    @pytest.mark.asyncio
    async def test_max_parallel_bounds_sync_task_bodies(self, registry: TaskRegistry) -> None:
        counter = Concurrency()
        for i in range(6):

            @task(name=f"t{i}", registry=registry)
            def body() -> None:
                with counter:
                    time.sleep(0.02)

        report = await run(registry, max_parallel=2)
        assert report["status"] == "SUCCESS"
        assert counter.peak == 2

    @pytest.mark.asyncio
    async def test_everything_at_once_when_the_limit_allows(self, registry: TaskRegistry) -> None:
        counter = Concurrency()
        both_in = asyncio.Event()

        for i in range(4):

            @task(name=f"t{i}", registry=registry)
            async def body() -> None:
                with counter:
                    if counter.now == 4:
                        both_in.set()
                    await asyncio.wait_for(both_in.wait(), 2)

        report = await run(registry, max_parallel=4)
        assert report["status"] == "SUCCESS"
        assert counter.peak == 4

    @pytest.mark.asyncio
    async def test_a_slot_is_released_on_failure_and_timeout(self, registry: TaskRegistry) -> None:
        release = threading.Event()

        @task(registry=registry)
        def fails() -> None:
            raise RuntimeError("boom")

        @task(registry=registry, timeout_s=0.03)
        def hangs() -> None:
            release.wait(2)

        @task(registry=registry)
        async def later() -> str:
            return "ran"

        try:
            report = await run(registry, max_parallel=1)
        finally:
            release.set()
        statuses = {name: t["status"] for name, t in report["tasks"].items()}
        assert statuses == {"fails": "FAILED", "hangs": "TIMED_OUT", "later": "SUCCESS"}

    @pytest.mark.asyncio
    async def test_report_tells_queued_time_from_running_time(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        async def first() -> None:
            await asyncio.sleep(0.1)

        @task(registry=registry)
        async def second() -> None:
            await asyncio.sleep(0.01)

        tasks = (await run(registry, max_parallel=1))["tasks"]
        first_s, queued = tasks["first"]["duration_s"], tasks["second"]
        # 'second' was ready at once but queued behind 'first' for its whole run time.
        assert queued["queued_s"] / first_s > 0.8
        assert queued["duration_s"] / first_s < 0.5
        assert tasks["first"]["queued_s"] / first_s < 0.2

    @pytest.mark.asyncio
    async def test_waiting_for_a_worker_of_an_injected_pool_counts_as_queued(
        self, registry: TaskRegistry
    ) -> None:
        # Three slots but one worker: the sync tasks wait in the pool's queue in turn.
        for name in ["a", "b", "c"]:

            @task(name=name, registry=registry)
            def body() -> None:
                time.sleep(0.04)

        with ThreadPoolExecutor(max_workers=1) as pool:
            engine = build_default_engine(
                executor=pool, registry=registry, config=SchedulerConfig(max_parallel=3)
            )
            tasks = engine.get_run_report(await engine.run_once("d"))["tasks"]
        durations = [t["duration_s"] for t in tasks.values()]
        queued = sorted(t["queued_s"] for t in tasks.values())
        assert max(durations) / min(durations) < 1.8  # each ran for its own sleep only
        assert queued[-1] / max(durations) > 1.5  # the last one waited for two others

    @pytest.mark.parametrize("max_parallel", [0, -1, 1.5, True, "3"])
    def test_bad_max_parallel(self, max_parallel: Any) -> None:
        with pytest.raises(InvalidMaxParallelError, match=r"max_parallel=.*>= 1") as info:
            SchedulerConfig(max_parallel=max_parallel)
        assert isinstance(info.value, FlowrunError)
        assert isinstance(info.value, InvalidOptionError)
        assert isinstance(info.value, ValueError)
        assert info.value.option == "max_parallel"

    def test_bad_default_timeout(self) -> None:
        with pytest.raises(InvalidTimeoutError, match="default_timeout_s"):
            SchedulerConfig(default_timeout_s=0)


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


class TestContextVars:
    @pytest.mark.asyncio
    async def test_tasks_see_the_callers_values(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        async def async_reader() -> str:
            return request_id.get()

        @task(registry=registry)
        def sync_reader() -> str:
            return request_id.get()

        token = request_id.set("caller")
        try:
            tasks = (await run(registry))["tasks"]
        finally:
            request_id.reset(token)
        assert tasks["async_reader"]["result"] == "caller"
        assert tasks["sync_reader"]["result"] == "caller"

    @pytest.mark.asyncio
    async def test_each_task_has_its_own_copy(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        async def async_writer() -> str:
            request_id.set("async_writer")
            await asyncio.sleep(0.01)
            return request_id.get()

        @task(registry=registry)
        def sync_writer() -> str:
            request_id.set("sync_writer")
            time.sleep(0.01)
            return request_id.get()

        @task(deps=[async_writer, sync_writer], registry=registry)
        async def child() -> str:
            return request_id.get()

        @task(deps=[sync_writer], registry=registry)
        def sync_child() -> str:
            return request_id.get()

        token = request_id.set("caller")
        try:
            tasks = (await run(registry))["tasks"]
            assert request_id.get() == "caller"
        finally:
            request_id.reset(token)
        assert tasks["async_writer"]["result"] == "async_writer"
        assert tasks["sync_writer"]["result"] == "sync_writer"
        assert tasks["child"]["result"] == "caller"
        assert tasks["sync_child"]["result"] == "caller"


class TestUpstream:
    @pytest.mark.asyncio
    async def test_upstream_holds_the_parents_results_by_name(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        async def a() -> int:
            return 1

        @task(name="bee", registry=registry)
        def b() -> dict[str, int]:
            return {"x": 2}

        @task(registry=registry)
        def unrelated() -> int:
            return 3

        @task(deps=[a, "bee"], registry=registry)
        def child(upstream: dict[str, Any]) -> dict[str, Any]:
            return upstream

        @task(deps=[child], registry=registry)
        async def grandchild(upstream: dict[str, Any]) -> list[str]:
            return sorted(upstream)

        tasks = (await run(registry))["tasks"]
        assert tasks["child"]["result"] == {"a": 1, "bee": {"x": 2}}
        assert tasks["grandchild"]["result"] == ["child"]  # parents only, not ancestors

    @pytest.mark.asyncio
    async def test_root_task_gets_an_empty_upstream(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def root(upstream: dict[str, Any]) -> dict[str, Any]:
            return upstream

        assert (await run(registry))["tasks"]["root"]["result"] == {}

    @pytest.mark.asyncio
    async def test_a_parameter_named_after_a_dependency_gets_its_result(
        self, registry: TaskRegistry
    ) -> None:
        @task(registry=registry)
        def numbers() -> list[int]:
            return [1, 2, 3]

        @task(deps=[numbers], registry=registry)
        def total(numbers: list[int]) -> int:
            return sum(numbers)

        assert (await run(registry))["tasks"]["total"]["result"] == 6


class TestFailure:
    @pytest.mark.asyncio
    async def test_descendants_are_skipped_over_several_levels(
        self, registry: TaskRegistry
    ) -> None:
        ran: list[str] = []

        @task(registry=registry)
        def ok() -> None:
            ran.append("ok")

        @task(registry=registry)
        def broken() -> None:
            raise ValueError("bad row")

        @task(deps=[broken, ok], registry=registry)
        def level1() -> None:
            ran.append("level1")

        @task(deps=[level1], registry=registry)
        def level2() -> None:
            ran.append("level2")

        @task(deps=[level2, ok], registry=registry)
        async def level3() -> None:
            ran.append("level3")

        report = await run(registry)
        tasks = report["tasks"]
        assert tasks["broken"]["status"] == "FAILED"
        assert tasks["broken"]["error"]["type"] == "ValueError"
        assert tasks["broken"]["error"]["message"] == "bad row"
        assert "raise ValueError" in tasks["broken"]["error"]["traceback"]
        for name in ["level1", "level2", "level3"]:
            assert tasks[name]["status"] == "SKIPPED"
            assert tasks[name]["skipped_because"] == "broken"
            assert tasks[name]["attempts"] == 0
        assert ran == ["ok"]
        assert report["status"] == "FAILED"

    @pytest.mark.asyncio
    async def test_a_diamond_below_a_failure_is_skipped_once(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def root() -> None:
            raise RuntimeError("root")

        @task(deps=[root], registry=registry)
        def left() -> None: ...

        @task(deps=[root, left], registry=registry)
        def right() -> None: ...

        @task(deps=[left, right], registry=registry)
        def bottom() -> None: ...

        report = await run(registry)
        assert report["counts"]["SKIPPED"] == 3
        for name in ["left", "right", "bottom"]:
            assert report["tasks"][name]["skipped_because"] == "root"

    @pytest.mark.asyncio
    async def test_timed_out_ancestor_is_named_too(self, registry: TaskRegistry) -> None:
        @task(registry=registry, timeout_s=0.02)
        async def slow() -> None:
            await asyncio.sleep(1)

        @task(deps=[slow], registry=registry)
        def child() -> None: ...

        tasks = (await run(registry))["tasks"]
        assert tasks["slow"]["status"] == "TIMED_OUT"
        assert (tasks["child"]["status"], tasks["child"]["skipped_because"]) == (
            "SKIPPED",
            "slow",
        )

    @pytest.mark.asyncio
    async def test_independent_branches_keep_running(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        async def fails_fast() -> None:
            raise RuntimeError("early")

        @task(registry=registry)
        async def other_root() -> None:
            await asyncio.sleep(0.03)  # still running when the failure happens

        @task(deps=[other_root], registry=registry)
        async def other_child() -> str:
            return "reached"

        report = await run(registry)
        tasks = report["tasks"]
        assert tasks["fails_fast"]["status"] == "FAILED"
        assert tasks["other_root"]["status"] == "SUCCESS"
        assert tasks["other_child"]["result"] == "reached"
        assert report["status"] == "FAILED"

    @pytest.mark.asyncio
    async def test_retries_count_attempts_until_success(self, registry: TaskRegistry) -> None:
        calls: list[float] = []

        @task(registry=registry, retries=3, retry_delay_s=0.04)
        def flaky() -> str:
            calls.append(time.perf_counter())
            if len(calls) < 3:
                raise ConnectionError(f"attempt {len(calls)}")
            return "finally"

        @task(deps=[flaky], registry=registry)
        def child(upstream: dict[str, str]) -> str:
            return upstream["flaky"]

        tasks = (await run(registry))["tasks"]
        assert tasks["flaky"]["status"] == "SUCCESS"
        assert tasks["flaky"]["attempts"] == 3
        assert tasks["flaky"]["error"] is None
        assert tasks["child"]["result"] == "finally"
        gaps = [b - a for a, b in itertools.pairwise(calls)]
        assert min(gaps) > 0.04 * 0.8

    @pytest.mark.asyncio
    async def test_a_timed_out_attempt_is_retried_too(self, registry: TaskRegistry) -> None:
        attempts: list[int] = []

        @task(registry=registry, timeout_s=0.03, retries=1)
        async def slow_then_fast() -> str:
            attempts.append(1)
            if len(attempts) == 1:
                await asyncio.sleep(1)
            return "second time lucky"

        entry = (await run(registry))["tasks"]["slow_then_fast"]
        assert (entry["status"], entry["attempts"]) == ("SUCCESS", 2)
        assert entry["result"] == "second time lucky"

    @pytest.mark.asyncio
    async def test_retries_exhausted(self, registry: TaskRegistry) -> None:
        calls: list[int] = []

        @task(registry=registry, retries=2)
        async def hopeless() -> None:
            calls.append(1)
            raise ConnectionError(f"attempt {len(calls)}")

        entry = (await run(registry))["tasks"]["hopeless"]
        assert entry["status"] == "FAILED"
        assert entry["attempts"] == 3
        assert entry["error"]["message"] == "attempt 3"
        assert len(calls) == 3

    @pytest.mark.asyncio
    async def test_a_retry_delay_gives_the_slot_back(self, registry: TaskRegistry) -> None:
        order: list[str] = []

        @task(registry=registry, retries=1, retry_delay_s=0.05)
        async def flaky() -> None:
            order.append("flaky")
            if order.count("flaky") == 1:
                raise ConnectionError("once")

        @task(registry=registry)
        async def other() -> None:
            order.append("other")

        tasks = (await run(registry, max_parallel=1))["tasks"]
        assert order == ["flaky", "other", "flaky"]
        assert tasks["flaky"]["status"] == "SUCCESS"


class TestStatuses:
    def test_statuses_print_as_plain_words(self, capsys: pytest.CaptureFixture[str]) -> None:
        for status in TaskStatus:
            print(status)
        assert capsys.readouterr().out.split() == [
            "PENDING",
            "RUNNING",
            "SUCCESS",
            "FAILED",
            "TIMED_OUT",
            "SKIPPED",
            "CANCELLED",
        ]
        assert f"{TaskStatus.SUCCESS}" == "SUCCESS"
        assert TaskStatus.SUCCESS == "SUCCESS"

    @pytest.mark.asyncio
    async def test_report_statuses_are_plain_strings(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def x() -> None: ...

        report = await run(registry)
        assert type(report["status"]) is str
        assert type(report["tasks"]["x"]["status"]) is str
        assert report["tasks"]["x"]["status"] == "SUCCESS"


class TestCancellation:
    @pytest.mark.asyncio
    async def test_cancelling_run_once_mid_run(self, registry: TaskRegistry) -> None:
        started = asyncio.Event()
        seen: list[str] = []
        release = threading.Event()

        @task(registry=registry)
        async def done_early() -> str:
            return "early"

        @task(registry=registry)
        async def running() -> None:
            started.set()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                seen.append("running cancelled")
                raise

        @task(registry=registry)
        def blocking() -> None:
            release.wait(2)

        @task(deps=[running], registry=registry)
        async def never_started() -> None:
            seen.append("never_started ran")

        engine = build_default_engine(registry=registry)
        run_task = asyncio.create_task(engine.run_once("d"))
        await asyncio.wait_for(started.wait(), 2)
        run_task.cancel()
        try:
            with pytest.raises(asyncio.CancelledError):
                await run_task
        finally:
            release.set()

        assert seen == ["running cancelled"]
        assert engine.last_run_id is not None
        report = engine.get_run_report(engine.last_run_id)
        statuses = {name: t["status"] for name, t in report["tasks"].items()}
        assert statuses == {
            "done_early": "SUCCESS",
            "running": "CANCELLED",
            "blocking": "CANCELLED",
            "never_started": "CANCELLED",
        }
        assert report["status"] == "CANCELLED"
        assert report["finished_at"] is not None
        assert report["tasks"]["never_started"]["attempts"] == 0

    @pytest.mark.asyncio
    async def test_a_cancelled_run_is_finalized_in_the_store(self, registry: TaskRegistry) -> None:
        started = asyncio.Event()

        @task(registry=registry)
        async def forever() -> None:
            started.set()
            await asyncio.sleep(10)

        engine = build_default_engine(registry=registry)
        run_task = asyncio.create_task(engine.run_once("d"))
        await asyncio.wait_for(started.wait(), 2)
        run_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run_task
        assert engine.last_run_id is not None
        record = engine.state_store.get(engine.last_run_id)
        assert record.status == "CANCELLED"
        assert record.finished_at is not None

    @pytest.mark.asyncio
    async def test_cancelling_during_a_retry_delay(self, registry: TaskRegistry) -> None:
        failed_once = asyncio.Event()

        @task(registry=registry, retries=3, retry_delay_s=10)
        async def flaky() -> None:
            failed_once.set()
            raise ConnectionError("down")

        engine = build_default_engine(registry=registry)
        run_task = asyncio.create_task(engine.run_once("d"))
        await asyncio.wait_for(failed_once.wait(), 2)
        await asyncio.sleep(0.01)  # now waiting out its retry delay, holding no slot
        run_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run_task
        assert engine.last_run_id is not None
        entry = engine.get_run_report(engine.last_run_id)["tasks"]["flaky"]
        assert (entry["status"], entry["attempts"]) == ("CANCELLED", 1)

    @pytest.mark.asyncio
    async def test_timeout_around_run_once_cancels_the_run(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        async def forever() -> None:
            await asyncio.sleep(10)

        engine = build_default_engine(registry=registry)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.03):
                await engine.run_once("d")
        assert engine.last_run_id is not None
        report = engine.get_run_report(engine.last_run_id)
        assert report["status"] == "CANCELLED"
        assert report["tasks"]["forever"]["status"] == "CANCELLED"

    @pytest.mark.asyncio
    async def test_a_task_cancelling_itself_fails_without_cancelling_the_run(
        self, registry: TaskRegistry
    ) -> None:
        @task(registry=registry)
        async def gives_up() -> None:
            raise asyncio.CancelledError

        @task(registry=registry)
        async def fine() -> int:
            return 1

        report = await run(registry)
        assert report["tasks"]["gives_up"]["status"] == "FAILED"
        assert report["tasks"]["fine"]["status"] == "SUCCESS"
        assert report["status"] == "FAILED"


@pytest.mark.asyncio
async def test_an_engine_is_usable_from_several_loops_in_turn(registry: TaskRegistry) -> None:
    @task(registry=registry)
    async def one() -> int:
        return 1

    engine: Engine = build_default_engine(registry=registry)
    first = await engine.run_once("d")

    def in_another_loop() -> str:
        return asyncio.run(engine.run_once("d"))

    second = await asyncio.to_thread(in_another_loop)
    assert engine.get_run_report(first)["status"] == "SUCCESS"
    assert engine.get_run_report(second)["status"] == "SUCCESS"


class TestSchedulerDirectly:
    @pytest.mark.asyncio
    async def test_run_returns_the_final_record(self, registry: TaskRegistry) -> None:

        task(name="a", registry=registry)(lambda: 1)
        task(name="b", deps=["a"], registry=registry)(lambda upstream: upstream["a"] + 1)
        store = StateStore()
        scheduler = Scheduler(SchedulerConfig(max_parallel=2), state_store=store)
        record = await scheduler.run(build_dag("direct", registry.snapshot()))
        assert record.status is RunStatus.SUCCESS
        assert record.dag_name == "direct"
        assert record.tasks["b"].result == 2
        assert store.get(record.run_id).status is RunStatus.SUCCESS

    @pytest.mark.asyncio
    async def test_start_gives_an_active_run_to_wait_on(self, registry: TaskRegistry) -> None:

        @task(registry=registry)
        async def slow() -> str:
            await asyncio.sleep(0.01)
            return "s"

        run = Scheduler().start(build_dag("d", registry.snapshot()))
        assert not run.done
        assert run.record("slow").status in (TaskStatus.PENDING, TaskStatus.RUNNING)
        assert await run.result("slow") == "s"
        await run.finish()
        assert run.done
        assert run.record("slow").status is TaskStatus.SUCCESS
