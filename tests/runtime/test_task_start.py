"""How attempts start: each in an asyncio task of its own, eagerly on Python 3.12+.

On 3.12+ an attempt's first step runs inside its creation, so a task that never suspends
ends without a trip through the event loop. These are the guarantees that must hold
either way, and under a task factory the user set on the loop (3.12's eager one too) or
a loop that makes its tasks its own way.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from flowrun import SchedulerConfig, TaskRegistry, build_default_engine, task

Factory = Callable[..., "asyncio.Future[Any]"]


def _counting_factory(created: list[str]) -> Factory:
    def factory(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Task[Any]:
        created.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kwargs)

    return factory


FACTORIES = [
    pytest.param(None, id="no-factory"),
    pytest.param("counting", id="counting-factory"),
    pytest.param(
        "eager",
        id="eager_task_factory",
        marks=pytest.mark.skipif(sys.version_info < (3, 12), reason="Python 3.12+"),
    ),
]


async def _run(registry: TaskRegistry, max_parallel: int = 4) -> dict[str, Any]:
    engine = build_default_engine(
        registry=registry, config=SchedulerConfig(max_parallel=max_parallel)
    )
    # A start that loses an attempt used to hang: fail instead.
    run_id = await asyncio.wait_for(engine.run_once("start"), 20)
    return engine.get_run_report(run_id)


class TestEachAttemptIsItsOwnTask:
    @pytest.mark.asyncio
    async def test_the_first_step_already_runs_in_the_attempts_task(
        self, registry: TaskRegistry
    ) -> None:
        runner = asyncio.current_task()
        seen: dict[str, Any] = {}

        @task(registry=registry)
        async def first_step() -> str:
            seen["task"] = asyncio.current_task()
            # asyncio.timeout binds to the current task on entry: it must be this one.
            try:
                async with asyncio.timeout(0.05):
                    await asyncio.sleep(5)
            except TimeoutError:
                return "timed out alone"
            return "not timed out"

        @task(registry=registry)
        async def sibling() -> str:
            await asyncio.sleep(0.1)
            return "ran on"

        report = await _run(registry)
        assert seen["task"] is not None
        assert seen["task"] is not runner
        assert report["tasks"]["first_step"]["result"] == "timed out alone"
        assert report["tasks"]["sibling"]["result"] == "ran on"

    @pytest.mark.asyncio
    async def test_a_chain_longer_than_the_recursion_limit_of_tasks_that_never_suspend(
        self, registry: TaskRegistry
    ) -> None:
        # Each eager attempt ends inside the start of the previous one's launch: that must
        # loop, not recurse.
        n = sys.getrecursionlimit() * 3
        order: list[int] = []
        for i in range(n):

            @task(name=f"t{i}", deps=[f"t{i - 1}"] if i else [], registry=registry)
            async def step(i: int = i) -> int:
                order.append(i)
                return i

        report = await _run(registry, max_parallel=2)
        assert report["counts"]["SUCCESS"] == n
        assert order == list(range(n))

    @pytest.mark.asyncio
    async def test_tasks_that_never_suspend_pass_results_and_are_retried(
        self, registry: TaskRegistry
    ) -> None:
        calls: list[str] = []

        @task(registry=registry)
        async def source() -> int:
            return 20

        @task(deps=[source], retries=2, registry=registry)
        async def flaky(source: int) -> int:
            calls.append("flaky")
            if len(calls) < 3:
                raise RuntimeError("not yet")
            return source + 1

        @task(deps=[flaky], registry=registry)
        async def sink(flaky: int) -> int:
            return flaky * 2

        report = await _run(registry)
        assert report["tasks"]["flaky"]["attempts"] == 3
        assert report["tasks"]["sink"]["result"] == 42


class TestTaskFactorySetOnTheLoop:
    @pytest.mark.asyncio
    @pytest.mark.parametrize("factory", FACTORIES)
    async def test_every_attempt_starts_and_max_parallel_holds(
        self, registry: TaskRegistry, factory: str | None
    ) -> None:
        loop = asyncio.get_running_loop()
        created: list[str] = []
        if factory == "counting":
            loop.set_task_factory(_counting_factory(created))
        elif factory == "eager":
            loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
        running = peak = 0

        async def bounded() -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

        try:
            for i in range(6):
                task(name=f"sleeps{i}", registry=registry)(bounded)
                task(name=f"returns{i}", deps=[f"sleeps{i}"], registry=registry)(_returns(i))
            report = await _run(registry, max_parallel=2)
        finally:
            loop.set_task_factory(None)
        assert report["counts"]["SUCCESS"] == 12
        assert [report["tasks"][f"returns{i}"]["result"] for i in range(6)] == list(range(6))
        assert peak == 2
        if factory == "counting":  # the factory made every attempt
            assert created.count("Attempts._attempt") == 12


def test_a_loop_with_its_own_create_task_makes_every_attempt(registry: TaskRegistry) -> None:
    created: list[str] = []

    class CountingLoop(asyncio.SelectorEventLoop):
        def create_task(self, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            created.append(coro.__qualname__)
            return super().create_task(coro, **kwargs)

    for i in range(3):
        task(name=f"returns{i}", registry=registry)(_returns(i))
    with asyncio.Runner(loop_factory=CountingLoop) as runner:
        report = runner.run(_run(registry))
    assert [report["tasks"][f"returns{i}"]["result"] for i in range(3)] == [0, 1, 2]
    assert created.count("Attempts._attempt") == 3


def _returns(value: int) -> Callable[[], Coroutine[Any, Any, int]]:
    async def returns() -> int:
        return value

    return returns
