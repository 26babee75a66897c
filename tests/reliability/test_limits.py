"""The ``max_parallel`` choice for abandoned sync tasks, made explicit.

A sync task that overruns its timeout cannot be killed: flowrun records it TIMED_OUT,
gives its slot back and abandons its thread. The thread counts against the executor (the
pool flowrun owns starts another thread), not against ``max_parallel``: otherwise one
hung call would stall the rest of the run for good.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

import flowrun.scheduler
from flowrun import RunStatus, SchedulerConfig, TaskRegistry, TaskStatus, build_default_engine, task

#: How long a hung task would block if nothing released it.
HANG_S = 5.0
TIMEOUT_S = 0.05


def test_abandoned_threads_hold_no_slot_and_the_run_does_not_wait_for_them(
    registry: TaskRegistry,
) -> None:
    release = threading.Event()
    lock = threading.Lock()
    live = peak = 0
    hung = 4

    def enter() -> None:
        nonlocal live, peak
        with lock:
            live += 1
            peak = max(peak, live)

    def leave() -> None:
        nonlocal live
        with lock:
            live -= 1

    for i in range(hung):

        @task(name=f"hang{i}", timeout_s=TIMEOUT_S, registry=registry)
        def hang() -> None:
            enter()
            try:
                release.wait(HANG_S)
            finally:
                leave()

    @task(registry=registry)
    def quick() -> str:
        enter()
        leave()
        return "done"

    engine = build_default_engine(registry=registry, config=SchedulerConfig(max_parallel=1))
    try:
        report = engine.get_run_report(asyncio.run(engine.run_once("limits")))
        still_blocked = live
    finally:
        release.set()

    assert report["status"] == RunStatus.FAILED
    for i in range(hung):
        assert report["tasks"][f"hang{i}"]["status"] == TaskStatus.TIMED_OUT
    assert report["tasks"]["quick"]["status"] == TaskStatus.SUCCESS
    # The run returned while every hung thread was still blocked, having run them one
    # after another under max_parallel=1: each gave its slot back at its timeout.
    assert still_blocked == hung
    # So more bodies were alive at once than max_parallel: the documented choice.
    assert peak >= hung > 1
    assert report["duration_s"] < HANG_S / 4


@pytest.mark.parametrize("late_by", ["within the grace period", "past the grace period"])
@pytest.mark.asyncio
async def test_an_async_task_ignoring_its_timeout_is_timed_out_and_its_setup_undone(
    registry: TaskRegistry, monkeypatch: pytest.MonkeyPatch, late_by: str
) -> None:
    """Regression: swallowing the cancellation and ending within the grace period used to
    count as a SUCCESS (a generator's late setup then kept for the run)."""
    grace = 0.2
    monkeypatch.setattr(flowrun.scheduler, "CANCEL_GRACE_S", grace)
    late_s = grace / 4 if late_by == "within the grace period" else grace * 2
    log: list[str] = []

    async def ignore_the_timeout() -> None:
        try:
            await asyncio.sleep(HANG_S)
        except asyncio.CancelledError:
            await asyncio.sleep(late_s)

    @task(timeout_s=TIMEOUT_S, registry=registry)
    async def plain() -> str:
        await ignore_the_timeout()
        return "late"

    @task(timeout_s=TIMEOUT_S, registry=registry)
    async def resource() -> AsyncIterator[str]:
        await ignore_the_timeout()
        yield "late"
        log.append("torn down")

    @task(registry=registry, deps=["plain", "resource"])
    def child() -> None:
        log.append("child ran")

    engine = build_default_engine(registry=registry)
    report = engine.get_run_report(await engine.run_once("stubborn"))

    for name in ("plain", "resource"):
        entry = report["tasks"][name]
        assert entry["status"] == TaskStatus.TIMED_OUT
        assert entry["error"]["type"] == "TaskTimeoutError"
        assert entry["result"] is None
        assert entry["teardown"] is None
    assert report["tasks"]["child"]["status"] == TaskStatus.SKIPPED
    for _ in range(200):
        if log:
            break
        await asyncio.sleep(0.01)
    assert log == ["torn down"]
