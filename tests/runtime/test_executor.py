"""Where task code runs (event loop, thread pool, process pool), timeouts, and pool ownership."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import pytest

import flowrun.scheduler as scheduler_module
from flowrun.context import RunContext
from flowrun.engine import Engine, build_default_engine
from flowrun.errors import TaskDefinitionError
from flowrun.executor import TaskExecutor
from flowrun.scheduler import SchedulerConfig
from flowrun.state import TaskStatus
from flowrun.task import TaskRegistry, task

from . import _process_tasks


def report_of(engine: Engine, run_id: str) -> dict[str, Any]:
    return engine.get_run_report(run_id)


class TestWhereCodeRuns:
    @pytest.mark.asyncio
    async def test_coroutines_run_on_the_running_loop(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        loops: list[asyncio.AbstractEventLoop] = []

        @task(registry=registry)
        async def on_loop() -> None:
            loops.append(asyncio.get_running_loop())

        await engine.run_once("d")
        assert loops == [asyncio.get_running_loop()]

    @pytest.mark.asyncio
    async def test_sync_tasks_run_off_the_loop_thread(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        threads: list[threading.Thread] = []

        @task(registry=registry)
        def blocking() -> None:
            threads.append(threading.current_thread())

        run_id = await engine.run_once("d")
        assert report_of(engine, run_id)["status"] == "SUCCESS"
        assert threads
        assert threads[0] is not threading.current_thread()

    @pytest.mark.asyncio
    async def test_sync_tasks_run_in_an_injected_thread_pool(self, registry: TaskRegistry) -> None:
        names: list[str] = []

        @task(registry=registry)
        def one() -> None:
            names.append(threading.current_thread().name)

        @task(registry=registry, deps=[one])
        def two() -> None:
            names.append(threading.current_thread().name)

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="injected-pool") as pool:
            engine = build_default_engine(executor=pool, registry=registry)
            run_id = await engine.run_once("d")
        assert report_of(engine, run_id)["status"] == "SUCCESS"
        assert len(names) == 2
        assert all(name.startswith("injected-pool") for name in names), names

    def test_thread_pools_of_this_process_are_told_from_other_executors(self) -> None:
        # Without importing concurrent.futures.thread itself: this module has imported it.
        with ThreadPoolExecutor(max_workers=1) as pool, _CountingPool() as subclassed:
            assert not TaskExecutor(pool).runs_in_processes
            assert not TaskExecutor(subclassed).runs_in_processes
        assert not TaskExecutor().runs_in_processes
        with ProcessPoolExecutor(max_workers=1) as processes:
            assert TaskExecutor(processes).runs_in_processes

    @pytest.mark.asyncio
    async def test_module_level_sync_tasks_run_in_a_process_pool(self) -> None:
        spawn = multiprocessing.get_context("spawn")  # fork is unsafe in a threaded process
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            engine = build_default_engine(executor=pool, registry=_process_tasks.registry)
            context = RunContext({"label": "sq"})
            run_id = await engine.run_once("in_processes", context=context)
        report = report_of(engine, run_id)
        assert report["status"] == "SUCCESS", report
        worker_pid = report["tasks"]["where"]["result"]
        assert isinstance(worker_pid, int)
        assert worker_pid != os.getpid()
        square = (worker_pid % 7) ** 2
        assert report["tasks"]["square"]["result"] == square
        assert report["tasks"]["labelled"]["result"] == f"sq={square} in {worker_pid}"

    @pytest.mark.asyncio
    async def test_a_sync_generator_task_is_refused_a_process_pool_before_running(
        self,
    ) -> None:
        registry = TaskRegistry()
        task(name="resource", registry=registry)(_process_tasks.resource)
        task(name="where", registry=registry)(_process_tasks.where)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            engine = build_default_engine(executor=pool, registry=registry)
            with pytest.raises(TaskDefinitionError, match=r"'resource'.*process pool"):
                await engine.run_once("d")
        assert engine.last_run_id is None

    @pytest.mark.asyncio
    async def test_async_tasks_still_run_on_the_loop_with_a_process_pool(
        self, registry: TaskRegistry
    ) -> None:
        @task(registry=registry)
        async def pid() -> int:
            return os.getpid()

        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            engine = build_default_engine(executor=pool, registry=registry)
            run_id = await engine.run_once("d")
        assert report_of(engine, run_id)["tasks"]["pid"]["result"] == os.getpid()


class TestTimeouts:
    @pytest.mark.asyncio
    async def test_async_task_is_cancelled_at_its_timeout(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        reached: list[str] = []

        @task(registry=registry, timeout_s=0.05)
        async def slow() -> None:
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                reached.append("cancelled")
                raise
            reached.append("finished")

        started = time.perf_counter()
        run_id = await engine.run_once("d")
        elapsed = time.perf_counter() - started
        entry = report_of(engine, run_id)["tasks"]["slow"]
        assert entry["status"] == "TIMED_OUT"
        assert entry["error"]["type"] == "TaskTimeoutError"
        assert "'slow'" in entry["error"]["message"]
        assert "0.05s" in entry["error"]["message"]
        assert reached == ["cancelled"]
        assert elapsed < 5 / 4  # nowhere near the five-second sleep

    @pytest.mark.asyncio
    async def test_many_async_tasks_with_different_timeouts_each_meet_their_own(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        # Attempts sharing a timeout value share one timer: interleave two values, quick
        # and slow bodies, and a chain whose later tasks start after earlier deadlines.
        for n in range(20):
            timeout_s = 0.05 if n % 2 else 0.5
            sleep_s = 0.2 if n % 4 < 2 else 0.0  # 0.2 s is over 0.05 and under 0.5

            async def body(sleep_s: float = sleep_s) -> None:
                await asyncio.sleep(sleep_s)

            task(name=f"t{n}", registry=registry, timeout_s=timeout_s)(body)
        for n in range(3):
            deps = [f"c{n - 1}"] if n else []

            async def link() -> None:
                await asyncio.sleep(0.03)  # each under its 0.05 s, the chain over it

            task(name=f"c{n}", registry=registry, deps=deps, timeout_s=0.05)(link)

        tasks = report_of(engine, await engine.run_once("d"))["tasks"]
        for n in range(20):
            late = n % 2 and n % 4 < 2
            assert tasks[f"t{n}"]["status"] == ("TIMED_OUT" if late else "SUCCESS"), n
        assert [tasks[f"c{n}"]["status"] for n in range(3)] == ["SUCCESS"] * 3

    @pytest.mark.asyncio
    async def test_async_task_ignoring_its_cancellation_is_abandoned_after_a_grace(
        self, registry: TaskRegistry, engine: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(scheduler_module, "CANCEL_GRACE_S", 0.05)
        release = asyncio.Event()
        stubborn_s = 1.0

        @task(registry=registry, timeout_s=0.03, retries=1)
        async def stubborn() -> str:
            try:
                await asyncio.sleep(stubborn_s)
            except asyncio.CancelledError:  # the anti-pattern: a bare except in a poll loop
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(stubborn_s):
                        await release.wait()
            return "too late"

        @task(registry=registry)
        async def bystander() -> str:
            return "fine"

        started = time.perf_counter()
        run_id = await engine.run_once("d")
        elapsed = time.perf_counter() - started
        release.set()
        tasks = report_of(engine, run_id)["tasks"]
        assert tasks["stubborn"]["status"] == "TIMED_OUT"
        assert tasks["stubborn"]["attempts"] == 2
        assert tasks["stubborn"]["result"] is None
        assert tasks["bystander"]["result"] == "fine"
        assert elapsed / stubborn_s < 0.5  # the run did not wait for the task to give in
        await asyncio.sleep(0.01)  # let the abandoned attempts finish: nothing may change
        assert report_of(engine, run_id)["tasks"]["stubborn"]["status"] == "TIMED_OUT"

    @pytest.mark.asyncio
    async def test_sync_task_is_abandoned_and_the_run_does_not_wait(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        release = threading.Event()
        finished = threading.Event()
        sleep_s = 0.6

        @task(registry=registry, timeout_s=0.05)
        def stuck() -> None:
            release.wait(sleep_s)
            finished.set()

        @task(registry=registry)
        def other() -> str:
            return "ok"

        started = time.perf_counter()
        run_id = await engine.run_once("d")
        elapsed = time.perf_counter() - started
        still_running = not finished.is_set()
        release.set()
        report = report_of(engine, run_id)
        assert report["tasks"]["stuck"]["status"] == "TIMED_OUT"
        assert report["tasks"]["other"]["status"] == "SUCCESS"
        assert report["status"] == "FAILED"
        assert still_running
        assert elapsed / sleep_s < 0.5  # the run ended long before the abandoned call

    @pytest.mark.asyncio
    async def test_timeout_counts_from_the_start_of_running_not_queueing(
        self, registry: TaskRegistry
    ) -> None:
        # With one slot, 'second' waits for 'first' (3 x its timeout) before it starts: it
        # must still succeed, because its own run takes well under its timeout.
        @task(registry=registry)
        async def first() -> None:
            await asyncio.sleep(0.15)

        @task(registry=registry, timeout_s=0.05)
        async def second() -> str:
            await asyncio.sleep(0.001)
            return "done"

        engine = build_default_engine(registry=registry, config=SchedulerConfig(max_parallel=1))
        run_id = await engine.run_once("d")
        entry = report_of(engine, run_id)["tasks"]["second"]
        assert entry["status"] == "SUCCESS", entry["error"]
        assert entry["queued_s"] > 2 * 0.05

    @pytest.mark.asyncio
    async def test_timeout_does_not_count_waiting_for_a_worker_of_the_injected_pool(
        self, registry: TaskRegistry
    ) -> None:
        # One worker, three sync tasks: the later ones wait in the pool's queue for longer
        # than their timeout, but each runs for well under it.
        for name in ["a", "b", "c"]:

            @task(name=name, registry=registry, timeout_s=0.12)
            def body() -> None:
                time.sleep(0.05)

        with ThreadPoolExecutor(max_workers=1) as pool:
            engine = build_default_engine(executor=pool, registry=registry)
            report = report_of(engine, await engine.run_once("d"))
        assert {t["status"] for t in report["tasks"].values()} == {"SUCCESS"}, report

    @pytest.mark.asyncio
    async def test_timeout_still_applies_after_waiting_for_a_worker(
        self, registry: TaskRegistry
    ) -> None:
        release = threading.Event()

        @task(registry=registry)
        def hog() -> None:
            time.sleep(0.05)

        @task(registry=registry, timeout_s=0.05)
        def overruns() -> None:
            release.wait(2)

        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                engine = build_default_engine(executor=pool, registry=registry)
                report = report_of(engine, await engine.run_once("d"))
                release.set()
        finally:
            release.set()
        assert report["tasks"]["hog"]["status"] == "SUCCESS"
        assert report["tasks"]["overruns"]["status"] == "TIMED_OUT"

    @pytest.mark.asyncio
    async def test_timeout_does_not_count_waiting_for_a_worker_process(self) -> None:
        # Eight 0.1 s naps through one worker process take 0.8 s, past their 0.6 s timeout.
        # A process pool says a call started when it dispatches it to the workers' queue,
        # which holds one call per worker plus one: a nap's clock may start two naps early,
        # so each is seen running for up to 0.3 s, half its timeout.
        spawn = multiprocessing.get_context("spawn")
        registry = TaskRegistry()
        for i in range(8):
            task(name=f"nap{i}", registry=registry, timeout_s=0.6)(_process_tasks.nap)
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            pool.submit(_process_tasks.nap).result()  # start the worker process first
            engine = build_default_engine(executor=pool, registry=registry)
            report = report_of(engine, await engine.run_once("d"))
        statuses = {name: t["status"] for name, t in report["tasks"].items()}
        assert set(statuses.values()) == {"SUCCESS"}, statuses

    @pytest.mark.asyncio
    async def test_default_timeout_applies_to_tasks_without_their_own(
        self, registry: TaskRegistry
    ) -> None:
        @task(registry=registry)
        async def unbounded() -> None:
            await asyncio.sleep(1)

        @task(registry=registry, timeout_s=2)
        async def own_timeout() -> str:
            await asyncio.sleep(0.05)
            return "done"

        config = SchedulerConfig(default_timeout_s=0.02)
        engine = build_default_engine(registry=registry, config=config)
        tasks = report_of(engine, await engine.run_once("d"))["tasks"]
        assert tasks["unbounded"]["status"] == "TIMED_OUT"
        assert tasks["own_timeout"]["status"] == "SUCCESS"

    @pytest.mark.asyncio
    async def test_timeout_bounds_each_attempt(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        @task(registry=registry, timeout_s=0.03, retries=2)
        async def always_slow() -> None:
            await asyncio.sleep(1)

        run_id = await engine.run_once("d")
        entry = report_of(engine, run_id)["tasks"]["always_slow"]
        assert entry["status"] == "TIMED_OUT"
        assert entry["attempts"] == 3

    @pytest.mark.asyncio
    async def test_task_raising_timeout_error_itself_is_failed_not_timed_out(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        @task(registry=registry, timeout_s=5)
        async def raises() -> None:
            raise TimeoutError("upstream API timed out")

        run_id = await engine.run_once("d")
        entry = report_of(engine, run_id)["tasks"]["raises"]
        assert entry["status"] == "FAILED"
        assert entry["error"]["type"] == "TimeoutError"


class _CountingPool(ThreadPoolExecutor):
    """A thread pool that remembers whether anyone shut it down."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.shutdowns = 0

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.shutdowns += 1
        super().shutdown(wait, cancel_futures=cancel_futures)


class TestOwnership:
    @pytest.mark.asyncio
    async def test_an_injected_executor_is_never_shut_down(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def work() -> int:
            return 1

        pool = _CountingPool()
        try:
            engine = build_default_engine(executor=pool, registry=registry)
            for _ in range(2):
                run_id = await engine.run_once("d")
                assert report_of(engine, run_id)["status"] == "SUCCESS"
            assert pool.shutdowns == 0
            assert pool.submit(lambda: 5).result() == 5  # still usable by its owner
        finally:
            pool.shutdown()

    @pytest.mark.asyncio
    async def test_flowrun_closes_the_pool_it_created(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        workers: list[threading.Thread] = []

        @task(registry=registry)
        def work() -> None:
            workers.append(threading.current_thread())

        await engine.run_once("d")
        assert workers
        workers[0].join(timeout=2)  # its pool was shut down, so the idle worker exits
        assert not workers[0].is_alive()

    @pytest.mark.asyncio
    async def test_own_pool_threads_are_daemons_so_a_stuck_task_cannot_hang_exit(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        release = threading.Event()
        workers: list[threading.Thread] = []

        @task(registry=registry, timeout_s=0.02)
        def stuck() -> None:
            workers.append(threading.current_thread())
            release.wait(2)

        try:
            await engine.run_once("d")
            assert workers[0].daemon
        finally:
            release.set()

    @pytest.mark.asyncio
    async def test_any_executor_works(self, registry: TaskRegistry) -> None:
        class Inline(Executor):
            """Runs each call at once on the submitting thread."""

            def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
                future: Future[Any] = Future()
                future.set_result(fn(*args, **kwargs))
                return future

        @task(registry=registry)
        def here() -> str:
            return threading.current_thread().name

        engine = build_default_engine(executor=Inline(), registry=registry)
        run_id = await engine.run_once("d")
        assert report_of(engine, run_id)["tasks"]["here"]["result"] == (
            threading.current_thread().name
        )


class TestOutcomes:
    @pytest.mark.asyncio
    async def test_sync_task_raising_stop_iteration_fails_instead_of_hanging(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        # asyncio futures refuse StopIteration: unconverted, the attempt would never end.
        @task(registry=registry)
        def first_row() -> int:
            return next(iter(()))

        @task(registry=registry)
        def fine() -> int:
            return 1

        run_id = await asyncio.wait_for(engine.run_once("d"), 5)
        tasks = report_of(engine, run_id)["tasks"]
        assert tasks["first_row"]["status"] == "FAILED"
        assert tasks["first_row"]["error"]["type"] == "RuntimeError"
        assert "StopIteration" in tasks["first_row"]["error"]["message"]
        assert "StopIteration" in tasks["first_row"]["error"]["traceback"]
        assert tasks["fine"]["status"] == "SUCCESS"

    @pytest.mark.asyncio
    async def test_stop_iteration_in_a_worker_process_fails_instead_of_hanging(self) -> None:
        registry = TaskRegistry()
        task(name="exhausted", registry=registry)(_process_tasks.exhausted)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            engine = build_default_engine(executor=pool, registry=registry)
            run_id = await asyncio.wait_for(engine.run_once("d"), 30)
        entry = report_of(engine, run_id)["tasks"]["exhausted"]
        assert entry["status"] == "FAILED"
        assert "StopIteration" in entry["error"]["message"]

    @pytest.mark.asyncio
    async def test_sync_generator_setup_abandoned_at_its_timeout_is_torn_down_later(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        proceed = threading.Event()
        torn_down = threading.Event()

        @task(registry=registry, timeout_s=0.03)
        def slow_setup() -> Iterator[str]:
            proceed.wait(2)
            yield "resource"
            torn_down.set()

        run_id = await engine.run_once("d")
        assert report_of(engine, run_id)["tasks"]["slow_setup"]["status"] == "TIMED_OUT"
        assert not torn_down.is_set()
        proceed.set()  # the abandoned setup finishes now: nothing may leak
        assert await asyncio.to_thread(torn_down.wait, 2)

    @pytest.mark.asyncio
    async def test_sync_generator_teardown_is_bounded_by_the_timeout(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        release = threading.Event()

        @task(registry=registry, timeout_s=0.05)
        def slow_close() -> Iterator[int]:
            yield 1
            release.wait(2)

        try:
            report = report_of(engine, await engine.run_once("d"))
        finally:
            release.set()
        entry = report["tasks"]["slow_close"]
        assert entry["status"] == "SUCCESS"
        assert entry["teardown"]["status"] == "TIMED_OUT"
        assert report["status"] == "FAILED"

    @pytest.mark.asyncio
    async def test_a_generator_yielding_twice_fails_its_teardown(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        @task(registry=registry)
        async def twice() -> AsyncIterator[int]:
            yield 1
            yield 2

        @task(registry=registry)
        def sync_twice() -> Iterator[int]:
            yield 1
            yield 2

        tasks = report_of(engine, await engine.run_once("d"))["tasks"]
        for name in ["twice", "sync_twice"]:
            assert tasks[name]["result"] == 1
            assert tasks[name]["teardown"]["status"] == "FAILED"
            assert "yielded more than once" in tasks[name]["teardown"]["error"]["message"]


class TestTaskExecutorDirectly:
    @pytest.mark.asyncio
    async def test_run_captures_results_errors_and_timeouts(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def ok(x: int = 2) -> int:
            return x * 10

        @task(registry=registry)
        async def bad() -> None:
            raise KeyError("k")

        @task(registry=registry)
        async def slow() -> None:
            await asyncio.sleep(1)

        executor = TaskExecutor()
        try:
            done = await executor.run(registry.get("ok"), {"x": 3}, None)
            assert (done.status, done.value, done.error) == (TaskStatus.SUCCESS, 30, None)
            failed = await executor.run(registry.get("bad"), {}, 1.0)
            assert failed.status is TaskStatus.FAILED
            assert isinstance(failed.error, KeyError)
            late = await executor.run(registry.get("slow"), {}, 0.01)
            assert late.status is TaskStatus.TIMED_OUT
        finally:
            executor.close()


def logged(fn: Any) -> Any:
    """A plain sync decorator of the kind users put on coroutine functions."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)  # the coroutine, for the caller to await

    return wrapper


class TestSyncWrappersOfCoroutines:
    @pytest.mark.asyncio
    async def test_a_coroutine_returned_by_a_sync_wrapper_is_awaited_on_the_loop(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        loops: list[asyncio.AbstractEventLoop] = []

        @task(registry=registry)
        @logged
        async def fetch(upstream: dict[str, Any]) -> str:
            loops.append(asyncio.get_running_loop())
            await asyncio.sleep(0)
            return "fetched"

        @task(deps=[fetch], registry=registry)
        def use(upstream: dict[str, Any]) -> Any:
            return upstream["fetch"]

        tasks = report_of(engine, await engine.run_once("d"))["tasks"]
        assert tasks["fetch"]["result"] == "fetched"
        assert tasks["use"]["result"] == "fetched"
        assert loops == [asyncio.get_running_loop()]

    @pytest.mark.asyncio
    async def test_the_timeout_covers_the_awaited_coroutine(
        self, registry: TaskRegistry, engine: Engine
    ) -> None:
        @task(registry=registry, timeout_s=0.03)
        @logged
        async def slow(upstream: dict[str, Any]) -> None:
            await asyncio.sleep(1)

        entry = report_of(engine, await engine.run_once("d"))["tasks"]["slow"]
        assert entry["status"] == "TIMED_OUT"
