"""Interrupts: a cancelled run returns promptly, tears down once, is finalized, and a
second interrupt is never swallowed.

Times are ratios inside one test: how long ``run_once`` takes to return after the
cancellation, against how long the blocked tasks would have kept it waiting.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import flowrun.scheduler
from flowrun import (
    Engine,
    RunStatus,
    SchedulerConfig,
    TaskRegistry,
    TaskStatus,
    build_default_engine,
    task,
)

#: How long blocked tasks would hold a run that waited for them.
BLOCK_S = 3.0


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of the test, so abandoned threads do not outlive it."""
    event = threading.Event()
    yield event
    event.set()


def make_engine(registry: TaskRegistry, max_parallel: int = 16) -> Engine:
    return build_default_engine(
        registry=registry, config=SchedulerConfig(max_parallel=max_parallel)
    )


async def until(condition: object, what: str, limit_s: float = 10.0) -> None:
    """Poll ``condition()`` from the event loop; fail after ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


async def cancel_and_time(runner: asyncio.Task[str]) -> float:
    """Cancel ``runner`` and return how long it took to finish."""
    started = time.perf_counter()
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    return time.perf_counter() - started


@pytest.mark.asyncio
async def test_cancelling_returns_promptly_while_sync_tasks_block(
    registry: TaskRegistry, release: threading.Event
) -> None:
    started: list[str] = []
    lock = threading.Lock()

    for i in range(4):

        @task(name=f"block{i}", registry=registry)
        def block(name: str = f"block{i}") -> None:
            with lock:
                started.append(name)
            release.wait(BLOCK_S)

    @task(registry=registry, deps=["block0", "block1"])
    def after() -> None:
        started.append("after")

    engine = make_engine(registry, max_parallel=4)
    runner = asyncio.ensure_future(engine.run_once("blocking"))
    await until(lambda: len(started) == 4, "the four blocking tasks")

    elapsed = await cancel_and_time(runner)

    assert elapsed < BLOCK_S / 5, "run_once waited for threads it should have abandoned"
    assert engine.last_run_id is not None
    report = engine.get_run_report(engine.last_run_id)
    assert report["status"] == "CANCELLED"
    assert {t["status"] for t in report["tasks"].values()} == {"CANCELLED"}
    assert "after" not in started


@pytest.mark.asyncio
async def test_code_ignoring_cancellation_delays_the_return_by_the_grace_period_only(
    registry: TaskRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    grace = BLOCK_S / 10
    monkeypatch.setattr(flowrun.scheduler, "CANCEL_GRACE_S", grace)
    ended = asyncio.Event()
    started = asyncio.Event()
    stop = asyncio.Event()

    @task(registry=registry)
    async def stubborn() -> None:
        started.set()
        try:
            await asyncio.sleep(BLOCK_S * 10)
        except asyncio.CancelledError:
            try:  # keeps going after the cancellation, for BLOCK_S or until told to stop
                await asyncio.wait_for(stop.wait(), BLOCK_S)
            finally:
                ended.set()
            raise

    engine = make_engine(registry)
    runner = asyncio.ensure_future(engine.run_once("stubborn"))
    await started.wait()

    elapsed = await cancel_and_time(runner)

    assert elapsed < BLOCK_S / 2
    assert elapsed >= grace * 0.5  # it did wait, a while
    assert engine.last_run_id is not None
    report = engine.get_run_report(engine.last_run_id)
    assert report["status"] == "CANCELLED"
    assert report["tasks"]["stubborn"]["status"] == "CANCELLED"
    assert not ended.is_set()  # run_once did not wait for it
    stop.set()
    await asyncio.wait_for(ended.wait(), BLOCK_S * 3)


def setup_tasks(registry: TaskRegistry, log: list[str], teardown_s: float) -> None:
    """Two independent async resources whose teardowns take ``teardown_s``, and a user."""

    for name in ("db", "cache"):

        @task(name=name, registry=registry)
        async def resource(name: str = name) -> object:
            log.append(f"{name} up")
            yield name
            log.append(f"{name} td-start")
            await asyncio.sleep(teardown_s)
            log.append(f"{name} td-end")

    @task(registry=registry, deps=["db", "cache"])
    async def work() -> None:
        log.append("work")
        await asyncio.sleep(BLOCK_S)


@pytest.mark.asyncio
async def test_one_cancellation_during_teardown_still_tears_everything_down(
    registry: TaskRegistry,
) -> None:
    log: list[str] = []
    setup_tasks(registry, log, teardown_s=0.05)
    registry.unregister("work")  # the run ends at once; the cancellation hits teardown
    engine = make_engine(registry)
    runner = asyncio.ensure_future(engine.run_once("resources"))
    await until(lambda: "db td-start" in log and "cache td-start" in log, "teardown")

    await cancel_and_time(runner)

    assert sorted(x for x in log if x.endswith("td-end")) == ["cache td-end", "db td-end"]
    assert engine.last_run_id is not None
    report = engine.get_run_report(engine.last_run_id)
    assert report["status"] == "CANCELLED"
    for name in ("db", "cache"):
        assert report["tasks"][name]["status"] == "SUCCESS"
        assert report["tasks"][name]["teardown"]["status"] == "SUCCESS"


@pytest.mark.asyncio
async def test_a_second_cancellation_during_teardown_propagates_at_once(
    registry: TaskRegistry,
) -> None:
    log: list[str] = []
    setup_tasks(registry, log, teardown_s=BLOCK_S)
    engine = make_engine(registry)
    runner = asyncio.ensure_future(engine.run_once("resources"))
    await until(lambda: "work" in log, "work to start")
    runner.cancel()
    await until(lambda: "db td-start" in log and "cache td-start" in log, "teardown")

    elapsed = await cancel_and_time(runner)

    assert elapsed < BLOCK_S / 5, "the second cancellation waited for teardown"
    assert not any(x.endswith("td-end") for x in log)
    assert engine.last_run_id is not None
    record = engine.state_store.get(engine.last_run_id)
    assert record.status is RunStatus.CANCELLED
    assert record.tasks["work"].status is TaskStatus.CANCELLED
    for name in ("db", "cache"):
        assert record.tasks[name].teardown_status is TaskStatus.CANCELLED


@pytest.mark.asyncio
async def test_a_second_cancellation_during_the_grace_period_still_finalizes_the_run(
    registry: TaskRegistry,
) -> None:
    """Regression: the run used to stay RUNNING, its set-up tasks never reported."""
    log: list[str] = []
    setup_tasks(registry, log, teardown_s=0.0)
    registry.unregister("work")

    @task(registry=registry, deps=["db"])
    async def stubborn() -> None:
        log.append("work")
        try:
            await asyncio.sleep(BLOCK_S * 10)
        except asyncio.CancelledError:
            log.append("ignoring")
            await asyncio.sleep(BLOCK_S / 3)
            raise

    engine = make_engine(registry)
    runner = asyncio.ensure_future(engine.run_once("stubborn"))
    await until(lambda: "work" in log, "work to start")
    runner.cancel()
    await until(lambda: "ignoring" in log, "the cancellation to reach the task")

    elapsed = await cancel_and_time(runner)

    assert elapsed < BLOCK_S / 5
    assert engine.last_run_id is not None
    record = engine.state_store.get(engine.last_run_id)
    assert record.status is RunStatus.CANCELLED
    assert record.finished_at is not None
    assert record.tasks["stubborn"].status is TaskStatus.CANCELLED
    for name in ("db", "cache"):
        assert record.tasks[name].status is TaskStatus.SUCCESS
        assert record.tasks[name].teardown_status is TaskStatus.CANCELLED
    await asyncio.sleep(BLOCK_S / 3)  # let the stubborn task end before the loop closes


@pytest.mark.asyncio
async def test_a_cancellation_as_the_last_task_ends_reports_the_run_cancelled(
    registry: TaskRegistry,
) -> None:
    """Regression: run_once raised CancelledError, yet the run was recorded SUCCESS and a
    later interrupt during its teardown counted as the first one."""
    log: list[str] = []
    loop = asyncio.get_running_loop()
    runner: asyncio.Task[str] | None = None

    @task(registry=registry)
    async def resource() -> object:
        yield "r"
        log.append("teardown")

    @task(registry=registry, deps=["resource"])
    async def last() -> None:
        assert runner is not None
        # Scheduled now, it runs after this task has ended the run but before run_once
        # wakes up: the cancellation lands on a run whose tasks are all done.
        loop.call_soon(runner.cancel)

    engine = make_engine(registry)
    runner = asyncio.ensure_future(engine.run_once("last"))
    with pytest.raises(asyncio.CancelledError):
        await runner

    assert engine.last_run_id is not None
    record = engine.state_store.get(engine.last_run_id)
    assert record.status is RunStatus.CANCELLED
    assert record.tasks["last"].status is TaskStatus.SUCCESS
    assert record.tasks["resource"].teardown_status is TaskStatus.SUCCESS
    assert log == ["teardown"]


def test_a_sync_setup_abandoned_as_it_finishes_is_still_torn_down(
    registry: TaskRegistry,
) -> None:
    """Regression: its teardown was queued on the run's pool, then dropped with it."""
    log: list[str] = []
    go = threading.Event()
    yielded = threading.Event()

    @task(registry=registry)
    def resource() -> Iterator[str]:
        log.append("up")
        go.wait(10)
        yielded.set()
        yield "r"
        log.append("down")

    async def main() -> None:
        engine = make_engine(registry)
        runner = asyncio.ensure_future(engine.run_once("abandoned"))
        await until(lambda: bool(log), "the setup to start")
        # Let the setup finish while the loop is blocked, so its result is not delivered
        # before the cancellation: the run gives up on a setup that has just finished.
        go.set()
        assert yielded.wait(10)
        time.sleep(0.05)  # noqa: ASYNC251 -- blocking the loop is the point
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner

    asyncio.run(main())
    deadline = time.monotonic() + 10
    while "down" not in log and time.monotonic() < deadline:
        time.sleep(0.002)
    assert log == ["up", "down"]


SIGINT_SCRIPT = """
import asyncio, signal, sys, threading, time
from flowrun import SchedulerConfig, TaskRegistry, build_default_engine, task

# A parent started in the background may hand SIGINT down ignored; Ctrl-C is the default.
signal.signal(signal.SIGINT, signal.default_int_handler)

registry = TaskRegistry()
BLOCK_S = {block_s}

@task(registry=registry)
def resource():
    yield "r"
    print("teardown", flush=True)

for i in range(3):
    @task(name=f"block{{i}}", registry=registry, deps=["resource"])
    def block():
        print("blocking", flush=True)
        time.sleep(BLOCK_S)

engine = build_default_engine(registry=registry, config=SchedulerConfig(max_parallel=8))
try:
    asyncio.run(engine.run_once("sigint"))
except KeyboardInterrupt:
    report = engine.get_run_report(engine.last_run_id)
    print("interrupted", report["status"], sorted(t["status"] for t in report["tasks"].values()),
          flush=True)
    sys.exit(130)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_returns_promptly_while_sync_tasks_block(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(SIGINT_SCRIPT.format(block_s=BLOCK_S * 2)))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        assert proc.stdout is not None
        seen = b""
        while seen.count(b"blocking") < 3:  # three threads print: lines may interleave
            chunk = os.read(proc.stdout.fileno(), 1024)
            assert chunk, f"the script ended early: {proc.stderr.read() if proc.stderr else ''!r}"
            seen += chunk
        started = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=BLOCK_S * 10)
        elapsed = time.perf_counter() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err.decode()
    assert elapsed < BLOCK_S * 2 / 4, "Ctrl-C waited for the blocked threads"
    lines = (seen + out).decode().replace("blocking", "").split()
    assert " ".join(lines) == (
        "teardown interrupted CANCELLED ['CANCELLED', 'CANCELLED', 'CANCELLED', 'SUCCESS']"
    )


WORKER_SIGINT_SCRIPT = """
import asyncio, signal, sys, threading, time
from flowrun import TaskRegistry, build_default_engine, task

signal.signal(signal.SIGINT, signal.default_int_handler)
registry = TaskRegistry()

@task(registry=registry)
def block():
    print("blocking", flush=True)
    time.sleep(0.3)  # the loop is idle now, waiting for this call with no timeout
    # The kernel may deliver a process's signal to any thread that does not block it:
    # here it lands on this worker, on purpose.
    signal.pthread_kill(threading.get_ident(), signal.SIGINT)
    time.sleep({block_s})

engine = build_default_engine(registry=registry)
try:
    asyncio.run(engine.run_once("worker-sigint"))
except KeyboardInterrupt:
    report = engine.get_run_report(engine.last_run_id)
    print("interrupted", report["status"], report["tasks"]["block"]["status"], flush=True)
    sys.exit(130)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="pthread_kill is POSIX")
def test_ctrl_c_delivered_to_a_worker_thread_still_stops_the_run_at_once(
    tmp_path: Path,
) -> None:
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(WORKER_SIGINT_SCRIPT.format(block_s=BLOCK_S * 4)))
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, timeout=BLOCK_S * 20, check=False
    )
    elapsed = time.perf_counter() - started
    assert proc.returncode == 130, proc.stderr.decode()
    assert proc.stdout.decode().split() == ["blocking", "interrupted", "CANCELLED", "CANCELLED"]
    # Without a wakeup, the loop learns of the signal only when the blocked call returns.
    assert elapsed < BLOCK_S * 4 / 2, "Ctrl-C waited for the blocked thread"


@pytest.mark.skipif(sys.platform == "win32", reason="set_wakeup_fd takes a socket there")
def test_the_signal_wakeup_is_the_runs_own_and_goes_with_it(registry: TaskRegistry) -> None:
    @task(registry=registry)
    def sync_step() -> int:
        return 1

    def run() -> str:
        engine = build_default_engine(registry=registry)
        return engine.get_run_report(asyncio.run(engine.run_once("wakeup")))["status"]

    assert threading.current_thread() is threading.main_thread()
    assert signal.set_wakeup_fd(-1) == -1  # none set before
    assert run() == "SUCCESS"
    assert signal.set_wakeup_fd(-1) == -1, "the run left its wakeup fd set"
    # One set already (asyncio's add_signal_handler sets one) is kept, not replaced.
    read, write = socket.socketpair()
    write.setblocking(False)
    try:
        signal.set_wakeup_fd(write.fileno())
        assert run() == "SUCCESS"
        assert signal.set_wakeup_fd(-1) == write.fileno()
    finally:
        read.close()
        write.close()


def stubborn_resource(registry: TaskRegistry, log: list[str], **options: Any) -> None:
    """An async setup that swallows its cancellation, keeps going, then yields anyway."""

    @task(registry=registry, **options)
    async def resource() -> AsyncIterator[str]:
        try:
            await asyncio.sleep(BLOCK_S * 10)
        except asyncio.CancelledError:
            log.append("swallowed")
            await asyncio.sleep(BLOCK_S / 10)
        yield "r"
        log.append("torn down")


@pytest.mark.asyncio
async def test_a_setup_ignoring_the_run_cancellation_past_the_grace_is_still_torn_down(
    registry: TaskRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: its generator was dropped without running the code after ``yield``."""
    monkeypatch.setattr(flowrun.scheduler, "CANCEL_GRACE_S", BLOCK_S / 30)
    log: list[str] = []
    stubborn_resource(registry, log)
    engine = make_engine(registry)
    runner = asyncio.ensure_future(engine.run_once("stubborn"))
    await asyncio.sleep(0.01)

    elapsed = await cancel_and_time(runner)

    assert elapsed < BLOCK_S / 10  # the grace period, not the stubborn setup
    assert engine.last_run_id is not None
    assert engine.get_run_report(engine.last_run_id)["status"] == "CANCELLED"
    await until(lambda: "torn down" in log, "the late teardown")
    assert log == ["swallowed", "torn down"]


@pytest.mark.asyncio
async def test_a_setup_ignoring_its_timeout_past_the_grace_is_still_torn_down(
    registry: TaskRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flowrun.scheduler, "CANCEL_GRACE_S", BLOCK_S / 30)
    log: list[str] = []
    stubborn_resource(registry, log, timeout_s=BLOCK_S / 60)
    engine = make_engine(registry)

    report = engine.get_run_report(await engine.run_once("stubborn"))

    assert report["tasks"]["resource"]["status"] == "TIMED_OUT"
    await until(lambda: "torn down" in log, "the late teardown")
    assert log == ["swallowed", "torn down"]
