"""The ``Engine`` facade: runs, registry snapshots, generator teardown and sessions."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import flowrun.scheduler as scheduler_module
from flowrun.context import RunContext
from flowrun.engine import Engine, build_default_engine
from flowrun.errors import (
    FlowrunError,
    InvalidMaxParallelError,
    InvalidOptionError,
    UnknownRunError,
    UnknownTaskError,
)
from flowrun.scheduler import SchedulerConfig, TaskFailedError
from flowrun.state import StateStore
from flowrun.task import TaskRegistry, task

current_resource: contextvars.ContextVar[str] = contextvars.ContextVar("current", default="none")


class TestRunOnce:
    @pytest.mark.asyncio
    async def test_returns_a_run_id_for_the_report(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        @task(registry=registry)
        async def hello() -> str:
            return "hi"

        run_id = await engine.run_once("greetings")
        assert isinstance(run_id, str)
        assert engine.last_run_id == run_id
        report = engine.get_run_report(run_id)
        assert (report["run_id"], report["dag"], report["status"]) == (
            run_id,
            "greetings",
            "SUCCESS",
        )
        assert report["tasks"]["hello"]["result"] == "hi"

    @pytest.mark.asyncio
    async def test_each_run_has_its_own_id(self, registry: TaskRegistry, engine: Engine) -> None:
        task(name="t", registry=registry)(lambda: None)
        assert await engine.run_once("d") != await engine.run_once("d")

    @pytest.mark.asyncio
    async def test_snapshots_the_registry_when_called(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        @task(registry=registry)
        async def registers_another() -> None:
            @task(registry=registry)
            def added_mid_run() -> None:
                raise AssertionError("not part of the running DAG")

        first = engine.get_run_report(await engine.run_once("d"))
        assert list(first["tasks"]) == ["registers_another"]
        assert first["status"] == "SUCCESS"
        registry.unregister("added_mid_run")

    @pytest.mark.asyncio
    async def test_later_registrations_join_later_runs(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        task(name="one", registry=registry)(lambda: 1)
        first = engine.get_run_report(await engine.run_once("d"))
        task(name="two", registry=registry)(lambda: 2)
        second = engine.get_run_report(await engine.run_once("d"))
        assert list(first["tasks"]) == ["one"]
        assert list(second["tasks"]) == ["one", "two"]

    @pytest.mark.asyncio
    async def test_a_subset_of_tasks_with_their_ancestors(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        task(name="a", registry=registry)(lambda: 1)
        task(name="ab", deps=["a"], registry=registry)(lambda: 2)
        task(name="b", registry=registry)(lambda: 3)
        report = engine.get_run_report(await engine.run_once("d", tasks=["ab"]))
        assert list(report["tasks"]) == ["a", "ab"]
        report = engine.get_run_report(await engine.run_once("d", tasks="ab"))
        assert list(report["tasks"]) == ["a", "ab"]  # one name, not the names 'a' and 'b'
        with pytest.raises(UnknownTaskError, match="'abb'"):
            await engine.run_once("d", tasks=["abb"])

    @pytest.mark.asyncio
    async def test_a_dag_from_configuration_children_declared_first(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        # As from YAML or a database: names and deps as strings, in no particular order.
        config = {"report": ["clean", "stats"], "clean": ["load"], "stats": ["load"], "load": []}

        def make(name: str) -> Any:
            def step(upstream: dict[str, str]) -> str:
                return f"{name}({', '.join(sorted(upstream.values()))})"

            return step

        for name, deps in config.items():
            task(name=name, deps=deps, registry=registry)(make(name))
        report = engine.get_run_report(await engine.run_once("from_config"))
        assert report["tasks"]["report"]["result"] == "report(clean(load()), stats(load()))"

    @pytest.mark.asyncio
    async def test_a_bare_bundle_is_wrapped_in_a_run_context(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        @task(registry=registry)
        def reads(context: RunContext[dict[str, int]]) -> int:
            return int(context.deps["n"])

        run_id = await engine.run_once("d", context={"n": 4})  # type: ignore[arg-type]
        assert engine.get_run_report(run_id)["tasks"]["reads"]["result"] == 4

    @pytest.mark.asyncio
    async def test_a_task_needing_a_context_without_one_fails_before_running(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        ran: list[str] = []

        @task(registry=registry)
        def first() -> None:
            ran.append("first")

        @task(registry=registry)
        def needs(ctx: RunContext[Any]) -> None:
            ran.append("needs")

        with pytest.raises(InvalidOptionError, match=r"'needs'.*'ctx'.*RunContext"):
            await engine.run_once("d")
        assert ran == []
        assert engine.last_run_id is None

    @pytest.mark.asyncio
    async def test_an_empty_dag_runs(self, engine: Engine) -> None:
        report = engine.get_run_report(await engine.run_once("nothing"))
        assert (report["status"], report["tasks"]) == ("SUCCESS", {})


class TestBadInputBeforeAnythingRuns:
    def test_unknown_run_id(self, engine: Engine) -> None:
        with pytest.raises(UnknownRunError, match="'no-such-run'") as info:
            engine.get_run_report("no-such-run")
        assert isinstance(info.value, FlowrunError)
        assert isinstance(info.value, LookupError)
        assert info.value.run_id == "no-such-run"

    def test_max_parallel_below_one_fails_when_wiring(self) -> None:
        with pytest.raises(InvalidMaxParallelError, match="max_parallel"):
            build_default_engine(config=SchedulerConfig(max_parallel=0))


class TestDisplayDag:
    def test_prints_and_returns_the_text(
        self, registry: TaskRegistry, engine: Engine, capsys: pytest.CaptureFixture[str]
    ) -> None:
        @task(registry=registry)
        async def fetch_user() -> None: ...

        @task(registry=registry, timeout_s=3)
        async def fetch_settings() -> None: ...

        @task(deps=[fetch_user, fetch_settings], registry=registry)
        def email_user(upstream: dict[str, Any]) -> None: ...

        text = engine.display_dag("user_onboarding")
        assert capsys.readouterr().out == text + "\n"
        assert text.splitlines() == [
            "dag 'user_onboarding': 3 tasks in 2 levels",
            "  level 0",
            "    fetch_user (async)",
            "    fetch_settings (async, timeout 3s)",
            "  level 1",
            "    email_user (sync) <- fetch_user, fetch_settings",
        ]


class TestGeneratorTasks:
    @pytest.mark.asyncio
    async def test_yielded_value_is_the_result_and_teardown_runs_after_the_run(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        events: list[str] = []

        @task(registry=registry)
        def sync_resource() -> Iterator[str]:
            events.append("sync setup")
            yield "sync value"
            events.append("sync teardown")

        @task(registry=registry)
        async def async_resource() -> AsyncIterator[str]:
            events.append("async setup")
            yield "async value"
            events.append("async teardown")

        @task(deps=[sync_resource, async_resource], registry=registry)
        def user(upstream: dict[str, str]) -> list[str]:
            events.append("user")
            return sorted(upstream.values())

        run_id = await engine.run_once("d")
        report = engine.get_run_report(run_id)
        assert report["tasks"]["user"]["result"] == ["async value", "sync value"]
        assert report["tasks"]["sync_resource"]["result"] == "sync value"
        assert events.index("user") < events.index("sync teardown")
        assert events.index("user") < events.index("async teardown")
        for name in ["sync_resource", "async_resource"]:
            assert report["tasks"][name]["teardown"]["status"] == "SUCCESS"
        assert report["tasks"]["user"]["teardown"] is None

    @pytest.mark.asyncio
    async def test_a_sync_decorator_around_a_generator_keeps_it_a_generator_task(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        events: list[str] = []

        def traced(fn: Any) -> Any:
            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                events.append(f"call {fn.__name__}")
                return fn(*args, **kwargs)  # the generator, for the caller to drive

            return wrapper

        @task(registry=registry)
        @traced
        def sync_resource() -> Iterator[str]:
            events.append("sync setup")
            yield "sync value"
            events.append("sync teardown")

        @task(registry=registry)
        @traced
        async def async_resource() -> AsyncIterator[str]:
            events.append("async setup")
            yield "async value"
            events.append("async teardown")

        report = engine.get_run_report(await engine.run_once("d"))
        assert report["tasks"]["sync_resource"]["result"] == "sync value"
        assert report["tasks"]["async_resource"]["result"] == "async value"
        for name in ["sync", "async"]:
            assert report["tasks"][f"{name}_resource"]["teardown"]["status"] == "SUCCESS"
            assert events.index(f"{name} setup") < events.index(f"{name} teardown")

    @pytest.mark.asyncio
    async def test_teardown_runs_in_the_context_of_its_setup(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        # A context variable set before the yield is seen after it, and can be reset.
        seen: dict[str, str] = {}

        @task(registry=registry)
        def sync_resource() -> Iterator[str]:
            token = current_resource.set("sync")
            yield current_resource.get()
            seen["sync"] = current_resource.get()
            current_resource.reset(token)

        @task(registry=registry, timeout_s=5)  # a teardown with a timeout runs in a task
        async def async_resource() -> AsyncIterator[str]:
            token = current_resource.set("async")
            yield current_resource.get()
            seen["async"] = current_resource.get()
            current_resource.reset(token)

        report = engine.get_run_report(await engine.run_once("d"))
        for name in ["sync_resource", "async_resource"]:
            assert report["tasks"][name]["teardown"]["error"] is None, name
            assert report["tasks"][name]["teardown"]["status"] == "SUCCESS"
        assert seen == {"sync": "sync", "async": "async"}
        assert current_resource.get() == "none"

    @pytest.mark.asyncio
    async def test_teardown_in_reverse_dependency_order(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        order: list[str] = []

        def resource(name: str) -> Any:
            async def gen() -> AsyncIterator[str]:
                yield name
                await asyncio.sleep(0.005)
                order.append(name)

            return gen

        def sync_resource(name: str) -> Any:
            def gen() -> Iterator[str]:
                yield name
                order.append(name)

            return gen

        task(name="db", registry=registry)(resource("db"))
        task(name="schema", deps=["db"], registry=registry)(sync_resource("schema"))
        task(name="cache", deps=["db"], registry=registry)(resource("cache"))
        task(name="app", deps=["schema", "cache"], registry=registry)(sync_resource("app"))
        task(name="plain", deps=["app"], registry=registry)(lambda: None)

        await engine.run_once("d")
        assert order[0] == "app"
        assert set(order[1:3]) == {"schema", "cache"}
        assert order[3] == "db"

    @pytest.mark.asyncio
    async def test_independent_teardowns_run_concurrently(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        left_in, right_in = asyncio.Event(), asyncio.Event()

        @task(registry=registry, timeout_s=2)
        async def left() -> AsyncIterator[None]:
            yield
            left_in.set()
            await right_in.wait()  # deadlocks (until the timeout) if teardowns were serial

        @task(registry=registry, timeout_s=2)
        async def right() -> AsyncIterator[None]:
            yield
            right_in.set()
            await left_in.wait()

        report = engine.get_run_report(await engine.run_once("d"))
        assert report["tasks"]["left"]["teardown"]["status"] == "SUCCESS"
        assert report["tasks"]["right"]["teardown"]["status"] == "SUCCESS"

    @pytest.mark.asyncio
    async def test_max_parallel_bounds_teardowns_too(self, registry: TaskRegistry) -> None:
        now, peak = 0, 0
        for i in range(5):

            @task(name=f"r{i}", registry=registry)
            async def resource() -> AsyncIterator[None]:
                nonlocal now, peak
                yield
                now += 1
                peak = max(peak, now)
                await asyncio.sleep(0.01)
                now -= 1

        engine = build_default_engine(registry=registry, config=SchedulerConfig(max_parallel=2))
        report = engine.get_run_report(await engine.run_once("d"))
        assert report["status"] == "SUCCESS"
        assert peak == 2

    @pytest.mark.asyncio
    async def test_a_failing_teardown_is_recorded_and_the_others_still_run(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        torn: list[str] = []

        @task(registry=registry)
        def base() -> Iterator[int]:
            yield 1
            torn.append("base")

        @task(deps=[base], registry=registry)
        async def broken_teardown() -> AsyncIterator[int]:
            yield 2
            raise OSError("could not close the socket")

        @task(registry=registry)
        def sibling() -> Iterator[int]:
            yield 3
            torn.append("sibling")

        report = engine.get_run_report(await engine.run_once("d"))
        entry = report["tasks"]["broken_teardown"]
        assert entry["status"] == "SUCCESS"  # the task itself did its job
        assert entry["teardown"]["status"] == "FAILED"
        assert entry["teardown"]["error"]["type"] == "OSError"
        assert entry["teardown"]["error"]["message"] == "could not close the socket"
        assert "raise OSError" in entry["teardown"]["error"]["traceback"]
        assert sorted(torn) == ["base", "sibling"]
        assert report["status"] == "FAILED"

    @pytest.mark.asyncio
    async def test_teardown_is_bounded_by_the_task_timeout(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        @task(registry=registry, timeout_s=0.05)
        async def slow_close() -> AsyncIterator[int]:
            yield 1
            await asyncio.sleep(5)

        report = engine.get_run_report(await engine.run_once("d"))
        teardown = report["tasks"]["slow_close"]["teardown"]
        assert teardown["status"] == "TIMED_OUT"
        assert "teardown timed out" in teardown["error"]["message"]
        assert teardown["duration_s"] < 5 / 4

    @pytest.mark.asyncio
    async def test_a_teardown_ignoring_its_cancellation_is_abandoned_after_a_grace(
        self, registry: TaskRegistry, engine: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(scheduler_module, "CANCEL_GRACE_S", 0.05)
        release = asyncio.Event()
        stubborn_s = 1.0
        torn: list[str] = []

        @task(registry=registry)
        async def base() -> AsyncIterator[None]:
            yield
            torn.append("base")

        @task(deps=[base], registry=registry, timeout_s=0.03)
        async def stubborn() -> AsyncIterator[None]:
            yield
            try:
                await asyncio.sleep(stubborn_s)
            except asyncio.CancelledError:  # swallowed: the teardown goes on regardless
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(stubborn_s):
                        await release.wait()

        started = time.perf_counter()
        report = engine.get_run_report(await engine.run_once("d"))
        elapsed = time.perf_counter() - started
        release.set()
        await asyncio.sleep(0.01)  # the abandoned teardown ends now, changing nothing
        assert report["tasks"]["stubborn"]["teardown"]["status"] == "TIMED_OUT"
        assert torn == ["base"]  # its parent was still torn down after it
        assert elapsed / stubborn_s < 0.5

    @pytest.mark.asyncio
    async def test_a_parent_is_torn_down_even_when_its_child_failed(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        torn: list[str] = []

        @task(registry=registry)
        async def conn() -> AsyncIterator[str]:
            yield "conn"
            torn.append("conn")

        @task(deps=[conn], registry=registry)
        def query() -> None:
            raise RuntimeError("syntax error")

        @task(deps=[query], registry=registry)
        def report_task() -> None: ...

        report = engine.get_run_report(await engine.run_once("d"))
        assert torn == ["conn"]
        assert report["tasks"]["report_task"]["skipped_because"] == "query"

    @pytest.mark.asyncio
    async def test_a_generator_that_never_yields_fails(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        @task(registry=registry)
        def empty() -> Iterator[int]:
            return
            yield  # pragma: no cover

        @task(registry=registry)
        async def async_empty() -> AsyncIterator[int]:
            return
            yield  # pragma: no cover

        tasks = engine.get_run_report(await engine.run_once("d"))["tasks"]
        for name in ["empty", "async_empty"]:
            assert tasks[name]["status"] == "FAILED"
            assert (
                f"'{name}' is a generator that returned without yielding"
                in (tasks[name]["error"]["message"])
            )

    @pytest.mark.asyncio
    async def test_teardown_runs_when_the_run_is_cancelled(self, registry: TaskRegistry) -> None:
        torn: list[str] = []
        ready = asyncio.Event()

        @task(registry=registry)
        async def resource() -> AsyncIterator[str]:
            yield "r"
            torn.append("resource")

        @task(deps=[resource], registry=registry)
        async def forever() -> None:
            ready.set()
            await asyncio.sleep(10)

        engine = build_default_engine(registry=registry)
        run_task = asyncio.create_task(engine.run_once("d"))
        await asyncio.wait_for(ready.wait(), 2)
        run_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run_task
        assert torn == ["resource"]
        assert engine.last_run_id is not None
        report = engine.get_run_report(engine.last_run_id)
        assert report["tasks"]["resource"]["teardown"]["status"] == "SUCCESS"
        assert report["status"] == "CANCELLED"


class TestCancellingTeardown:
    @staticmethod
    def slow_teardown(registry: TaskRegistry, seconds: float) -> tuple[asyncio.Event, list[str]]:
        in_teardown = asyncio.Event()
        torn: list[str] = []

        @task(registry=registry, timeout_s=10)
        async def resource() -> AsyncIterator[str]:
            yield "r"
            in_teardown.set()
            await asyncio.sleep(seconds)
            torn.append("resource")

        return in_teardown, torn

    @pytest.mark.asyncio
    async def test_one_cancellation_during_teardown_lets_it_finish(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        in_teardown, torn = self.slow_teardown(registry, 0.05)
        run_task = asyncio.create_task(engine.run_once("d"))
        await asyncio.wait_for(in_teardown.wait(), 2)
        run_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run_task
        assert torn == ["resource"]
        assert engine.last_run_id is not None
        report = engine.get_run_report(engine.last_run_id)
        assert report["tasks"]["resource"]["teardown"]["status"] == "SUCCESS"
        assert report["finished_at"] is not None
        assert report["status"] == "CANCELLED"  # run_once did not complete

    @pytest.mark.asyncio
    async def test_a_second_cancellation_cuts_teardown_short(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        in_teardown, torn = self.slow_teardown(registry, 5)
        run_task = asyncio.create_task(engine.run_once("d"))
        await asyncio.wait_for(in_teardown.wait(), 2)
        started = time.perf_counter()
        run_task.cancel()
        await asyncio.sleep(0.01)
        run_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run_task
        assert time.perf_counter() - started < 5 / 4
        assert torn == []
        assert engine.last_run_id is not None
        report = engine.get_run_report(engine.last_run_id)
        assert report["tasks"]["resource"]["teardown"]["status"] == "CANCELLED"
        assert report["status"] == "CANCELLED"


class TestSession:
    @pytest.mark.asyncio
    async def test_resources_live_until_the_block_ends(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        state = {"open": False}

        @task(registry=registry)
        async def connection() -> AsyncIterator[dict[str, bool]]:
            state["open"] = True
            yield state
            state["open"] = False

        @task(deps=[connection], registry=registry)
        def ping(connection: dict[str, bool]) -> bool:
            return connection["open"]

        async with engine.session("d") as run:
            assert await run.result("ping") is True
            await run.wait()
            assert run.done
            assert state["open"] is True  # every task finished; the resource is still open
            assert engine.get_run_report(run.run_id)["status"] == "RUNNING"
        assert state["open"] is False
        report = engine.get_run_report(run.run_id)
        assert report["status"] == "SUCCESS"
        assert report["tasks"]["connection"]["teardown"]["status"] == "SUCCESS"

    @pytest.mark.asyncio
    async def test_sync_generator_resources_live_until_the_block_ends(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        closed = threading.Event()

        @task(registry=registry)
        def pool() -> Iterator[str]:
            yield "pool"
            closed.set()

        async with engine.session("d") as run:
            assert await run.result("pool") == "pool"
            await asyncio.sleep(0.01)
            assert not closed.is_set()
        assert closed.is_set()

    @pytest.mark.asyncio
    async def test_result_of_a_failed_task_raises(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        @task(registry=registry)
        def broken() -> None:
            raise KeyError("k")

        @task(deps=[broken], registry=registry)
        def child() -> None: ...

        async with engine.session("d") as run:
            with pytest.raises(TaskFailedError, match="'child' was skipped because task 'broken'"):
                await run.result("child")
            with pytest.raises(TaskFailedError, match="'broken' failed") as info:
                await run.result("broken")
            assert info.value.status == "FAILED"

    @pytest.mark.asyncio
    async def test_an_error_in_the_block_cancels_the_run_and_tears_down(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        torn: list[str] = []

        @task(registry=registry)
        async def resource() -> AsyncIterator[None]:
            yield
            torn.append("resource")

        @task(deps=[resource], registry=registry)
        async def slow() -> None:
            await asyncio.sleep(10)

        async def use_then_fail() -> str:
            async with engine.session("d") as run:
                await run.result("resource")
                raise LookupError(run.run_id)

        with pytest.raises(LookupError) as info:
            await use_then_fail()
        run_id = info.value.args[0]
        assert torn == ["resource"]
        report = engine.get_run_report(run_id)
        assert report["status"] == "CANCELLED"
        assert report["tasks"]["slow"]["status"] == "CANCELLED"


class TestSessionEdges:
    @pytest.mark.asyncio
    async def test_result_of_an_unknown_task(self, registry: TaskRegistry, engine: Engine) -> None:
        task(name="known", registry=registry)(lambda: 1)
        async with engine.session("d") as run:
            with pytest.raises(UnknownTaskError, match="did you mean 'known'"):
                await run.result("knwon")

    @pytest.mark.asyncio
    async def test_cancelling_the_block_cancels_the_run(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        torn: list[str] = []
        inside = asyncio.Event()

        @task(registry=registry)
        async def resource() -> AsyncIterator[None]:
            yield
            torn.append("resource")

        @task(deps=[resource], registry=registry)
        async def forever() -> None:
            await asyncio.sleep(10)

        run_ids: list[str] = []

        async def hold() -> None:
            async with engine.session("d") as run:
                run_ids.append(run.run_id)
                await run.result("resource")
                inside.set()
                await asyncio.sleep(10)

        holder = asyncio.create_task(hold())
        await asyncio.wait_for(inside.wait(), 2)
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
        report = engine.get_run_report(run_ids[0])
        assert report["status"] == "CANCELLED"
        assert report["tasks"]["forever"]["status"] == "CANCELLED"
        assert torn == ["resource"]

    @pytest.mark.asyncio
    async def test_two_sessions_of_one_engine_at_once(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        @task(registry=registry)
        async def resource() -> AsyncIterator[object]:
            yield object()

        async with engine.session("one") as first, engine.session("two") as second:
            a, b = await first.result("resource"), await second.result("resource")
            assert a is not b  # each run sets up its own
        assert engine.get_run_report(first.run_id)["status"] == "SUCCESS"
        assert engine.get_run_report(second.run_id)["status"] == "SUCCESS"


class TestInjectedStore:
    @pytest.mark.asyncio
    async def test_the_engine_records_into_the_store_it_was_given(
        self, registry: TaskRegistry
    ) -> None:
        store = StateStore()
        task(name="t", registry=registry)(lambda: 1)
        engine = build_default_engine(registry=registry, state_store=store)
        run_id = await engine.run_once("d")
        assert engine.state_store is store
        assert store.get(run_id).tasks["t"].result == 1
