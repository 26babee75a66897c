"""How a task ends by what its body raises: errors, skips, interrupts, BaseExceptions.

Also the two ways a run stops starting work: ``ActiveRun.halt`` from another thread, and
cancellation waiting for a sync generator's setup so that it is torn down in order.
"""

from __future__ import annotations

import asyncio
import threading
import time
import unittest
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

import flowrun.scheduler as scheduler_module
from flowrun.engine import build_default_engine
from flowrun.errors import InvalidOptionError, TaskFailedError
from flowrun.scheduler import SchedulerConfig
from flowrun.task import TaskRegistry, task


class Outcome(BaseException):
    """Stands for a test framework's outcome (pytest's ``Skipped`` is a BaseException)."""


def raiser(kind: str, exc: BaseException, log: list[str]) -> Callable[..., Any]:
    """A task body of ``kind`` that raises ``exc`` while setting up."""
    if kind == "sync":

        def sync() -> None:
            raise exc

        return sync
    if kind == "async":

        async def coro() -> None:
            raise exc

        return coro
    if kind == "sync generator":

        def gen() -> Iterator[None]:
            raise exc
            yield

        return gen

    async def agen() -> AsyncIterator[None]:
        raise exc
        yield

    return agen


KINDS = ["sync", "async", "sync generator", "async generator"]


def run(registry: TaskRegistry, config: SchedulerConfig | None = None) -> dict[str, Any]:
    engine = build_default_engine(registry=registry, config=config)
    run_id = asyncio.run(engine.run_once("outcomes"))
    return engine.get_run_report(run_id)


@pytest.mark.parametrize("kind", KINDS)
def test_a_base_exception_from_a_body_fails_the_task_and_the_run_goes_on(
    registry: TaskRegistry, kind: str
) -> None:
    log: list[str] = []
    task(name="broken", registry=registry, retries=1)(raiser(kind, Outcome("no"), log))
    task(name="after", registry=registry, deps=["broken"])(lambda: None)
    task(name="other", registry=registry)(lambda: "fine")

    report = run(registry)

    broken = report["tasks"]["broken"]
    assert (broken["status"], broken["attempts"]) == ("FAILED", 2)  # retried like any error
    assert (broken["error"]["type"], broken["error"]["message"]) == ("Outcome", "no")
    assert report["tasks"]["after"]["status"] == "SKIPPED"
    assert report["tasks"]["other"]["result"] == "fine"
    assert report["status"] == "FAILED"


@pytest.mark.parametrize("kind", KINDS)
def test_a_skip_exception_skips_the_task_and_its_dependants_without_failing_the_run(
    registry: TaskRegistry, kind: str
) -> None:
    log: list[str] = []
    task(name="docker", registry=registry, retries=3)(
        raiser(kind, unittest.SkipTest("docker is not available"), log)
    )
    task(name="db", registry=registry, deps=["docker"])(lambda: None)
    task(name="unit", registry=registry)(lambda: None)

    report = run(registry, SchedulerConfig(skip_exceptions=(unittest.SkipTest,)))

    docker = report["tasks"]["docker"]
    assert (docker["status"], docker["attempts"]) == ("SKIPPED", 1)  # never retried
    assert docker["error"]["message"] == "docker is not available"
    assert docker["skipped_because"] is None  # it skipped itself
    assert report["tasks"]["db"]["status"] == "SKIPPED"
    assert report["tasks"]["db"]["skipped_because"] == "docker"
    assert report["status"] == "SUCCESS"
    assert report["counts"]["SKIPPED"] == 2


def test_a_skip_exception_may_be_a_base_exception(registry: TaskRegistry) -> None:
    task(name="skips", registry=registry)(raiser("sync", Outcome("later"), []))
    report = run(registry, SchedulerConfig(skip_exceptions=(Outcome,)))
    assert report["tasks"]["skips"]["status"] == "SKIPPED"


@pytest.mark.asyncio
async def test_result_of_a_skipped_task_raises_with_the_exception_as_its_cause(
    registry: TaskRegistry,
) -> None:
    reason = unittest.SkipTest("no docker")
    task(name="docker", registry=registry)(raiser("async", reason, []))
    task(name="db", registry=registry, deps=["docker"])(lambda: None)
    engine = build_default_engine(
        registry=registry, config=SchedulerConfig(skip_exceptions=(unittest.SkipTest,))
    )
    async with engine.session("outcomes") as active:
        with pytest.raises(TaskFailedError, match="'docker' was skipped: SkipTest: no docker"):
            await active.result("docker")
        with pytest.raises(TaskFailedError) as info:
            await active.result("db")
    assert info.value.cause == "docker"
    assert info.value.__cause__ is reason


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_from_a_body_stops_the_run_tears_down_and_is_raised_again(
    registry: TaskRegistry, kind: str, exc_type: type[BaseException]
) -> None:
    log: list[str] = []

    @task(registry=registry)
    def server() -> Iterator[str]:
        log.append("server up")
        yield "server"
        log.append("server down")

    @task(registry=registry)
    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            log.append("slow cancelled")
            raise

    task(name="stop", registry=registry, deps=["server"])(raiser(kind, exc_type("now"), log))
    task(name="after", registry=registry, deps=["stop"])(lambda: log.append("after ran"))
    engine = build_default_engine(registry=registry)

    started = time.perf_counter()
    with pytest.raises(exc_type):
        asyncio.run(engine.run_once("outcomes"))

    assert time.perf_counter() - started < 10  # not the 30 s of the slow task
    assert log == ["server up", "slow cancelled", "server down"]
    assert engine.last_run_id is not None
    report = engine.get_run_report(engine.last_run_id)
    assert report["status"] == "CANCELLED"
    assert report["tasks"]["stop"]["status"] == "FAILED"
    assert report["tasks"]["stop"]["error"]["type"] == exc_type.__name__
    assert report["tasks"]["slow"]["status"] == "CANCELLED"
    assert report["tasks"]["after"]["status"] == "CANCELLED"
    assert report["tasks"]["server"]["teardown"]["status"] == "SUCCESS"


def test_without_interrupt_exceptions_a_keyboard_interrupt_is_a_plain_failure(
    registry: TaskRegistry,
) -> None:
    task(name="stop", registry=registry)(raiser("sync", KeyboardInterrupt(), []))
    task(name="other", registry=registry)(lambda: 1)
    report = run(registry, SchedulerConfig(interrupt_exceptions=()))
    assert report["tasks"]["stop"]["status"] == "FAILED"
    assert report["tasks"]["other"]["status"] == "SUCCESS"
    assert report["status"] == "FAILED"


@pytest.mark.parametrize("kind", ["sync generator", "async generator"])
def test_a_base_exception_in_a_teardown_is_a_recorded_teardown_failure(
    registry: TaskRegistry, kind: str
) -> None:
    if kind == "sync generator":

        def resource() -> Iterator[int]:
            yield 1
            raise Outcome("teardown broke")

    else:

        async def resource() -> AsyncIterator[int]:  # type: ignore[misc]
            yield 1
            raise Outcome("teardown broke")

    task(name="resource", registry=registry)(resource)
    report = run(registry)
    teardown = report["tasks"]["resource"]["teardown"]
    assert teardown["status"] == "FAILED"
    assert teardown["error"]["type"] == "Outcome"
    assert report["status"] == "FAILED"


@pytest.mark.parametrize(
    "option", [{"skip_exceptions": [ValueError]}, {"interrupt_exceptions": (int,)}]
)
def test_exception_options_must_be_tuples_of_exception_classes(option: dict[str, Any]) -> None:
    name = next(iter(option))
    with pytest.raises(InvalidOptionError, match=f"{name}=.* a tuple of exception classes"):
        SchedulerConfig(**option)


@pytest.mark.asyncio
async def test_halt_from_another_thread_starts_nothing_more(registry: TaskRegistry) -> None:
    started: list[str] = []
    gate = threading.Event()

    @task(registry=registry)
    def first() -> None:
        started.append("first")
        gate.wait(10)

    @task(registry=registry, deps=["first"])
    def second() -> None:
        started.append("second")

    engine = build_default_engine(registry=registry)
    active = scheduler_module.Scheduler(SchedulerConfig(), state_store=engine.state_store).start(
        engine.build_dag("outcomes")
    )
    while not started:  # noqa: ASYNC110 - a list filled by a thread
        await asyncio.sleep(0.01)
    halter = threading.Thread(target=active.halt)
    halter.start()
    halter.join()
    gate.set()  # "first" succeeds now: "second" is ready, but must not start
    await active.result("first")
    await asyncio.sleep(0.05)  # time enough for "second" to start, were it allowed to
    await active.finish(cancel=True)
    assert started == ["first"]
    assert active.record("first").status == "SUCCESS"
    assert active.record("second").status == "CANCELLED"


@pytest.mark.asyncio
async def test_cancel_waits_for_a_starting_sync_setup_and_tears_it_down_before_its_parent(
    registry: TaskRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A grace far longer than the setup: the wait ends when the setup does, however
    # loaded the machine.
    monkeypatch.setattr(scheduler_module, "CANCEL_GRACE_S", 60.0)
    log: list[str] = []
    child_starting = threading.Event()

    @task(registry=registry)
    async def database() -> AsyncIterator[str]:
        log.append("database up")
        yield "db"
        log.append("database down")

    @task(registry=registry, deps=["database"])
    def api() -> Iterator[str]:
        child_starting.set()
        time.sleep(0.3)  # still starting when the run is cancelled
        log.append("api up")
        yield "api"
        log.append("api down")

    engine = build_default_engine(registry=registry)
    runner = asyncio.ensure_future(engine.run_once("outcomes"))
    assert await asyncio.to_thread(child_starting.wait, 10)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert log == ["database up", "api up", "api down", "database down"]
    assert engine.last_run_id is not None
    api_record = engine.get_run_report(engine.last_run_id)["tasks"]["api"]
    assert api_record["status"] == "CANCELLED"
    assert api_record["teardown"]["status"] == "SUCCESS"
