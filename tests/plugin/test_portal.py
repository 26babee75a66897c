"""``LoopPortal``: the setup run's event loop in a daemon thread, driven from the main thread."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator

import pytest

from pytest_flowrun._portal import LoopPortal


@pytest.fixture
def portal() -> Iterator[LoopPortal]:
    """A started portal, stopped afterwards."""
    portal = LoopPortal("flowrun-test-loop")
    portal.start()
    yield portal
    portal.stop()


def test_call_runs_the_coroutine_on_the_loop_thread(portal: LoopPortal) -> None:
    async def where() -> str:
        asyncio.get_running_loop()
        return threading.current_thread().name

    assert portal.call(where()) == "flowrun-test-loop"


def test_the_loop_thread_is_a_daemon_and_start_is_idempotent(portal: LoopPortal) -> None:
    async def thread() -> threading.Thread:
        return threading.current_thread()

    first = portal.call(thread())
    portal.start()
    assert portal.call(thread()) is first
    assert first.daemon


def test_call_raises_what_the_coroutine_raises(portal: LoopPortal) -> None:
    async def fail() -> None:
        raise ValueError("boom")

    async def time_out() -> None:
        raise TimeoutError("late")

    with pytest.raises(ValueError, match="boom"):
        portal.call(fail())
    with pytest.raises(TimeoutError, match="late"):
        portal.call(time_out())


def test_a_call_outlasting_a_wait_slice_still_returns(portal: LoopPortal) -> None:
    async def slow() -> int:
        await asyncio.sleep(0.4)
        return 1

    assert portal.call(slow()) == 1


def test_an_interrupted_wait_cancels_the_coroutine(
    portal: LoopPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def interrupt(future: object, check: object, tick: object = None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("pytest_flowrun._portal._result", interrupt)
    with pytest.raises(KeyboardInterrupt):
        portal.call(forever())
    assert cancelled.wait(5)


def test_what_check_raises_interrupts_the_wait_and_reaches_on_interrupt(
    portal: LoopPortal,
) -> None:
    cancelled = threading.Event()
    seen: list[BaseException] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def check() -> None:
        raise KeyboardInterrupt("from a task")

    portal.on_interrupt = seen.append
    with pytest.raises(KeyboardInterrupt, match="from a task"):
        portal.call(forever(), check=check)
    assert cancelled.wait(5)
    assert [type(e) for e in seen] == [KeyboardInterrupt]


@pytest.mark.parametrize("exc", [KeyboardInterrupt("stop"), SystemExit(3)])
def test_keyboard_interrupt_or_system_exit_from_a_coroutine_reach_the_caller_not_the_loop(
    portal: LoopPortal, exc: BaseException
) -> None:
    seen: list[BaseException] = []
    portal.on_interrupt = seen.append

    async def interrupt() -> None:
        raise exc

    async def alive() -> str:
        return "alive"

    with pytest.raises(type(exc)) as info:
        portal.call(interrupt())
    assert info.value is exc
    assert portal.call(alive()) == "alive"  # the loop thread still serves
    assert seen == []  # raised by the coroutine: not an interrupt of the wait


def test_stop_joins_and_closes_the_loop_and_call_then_raises() -> None:
    portal = LoopPortal("flowrun-test-loop")
    portal.start()

    async def loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    running = portal.call(loop())
    portal.stop()
    assert not portal.running
    assert running.is_closed()
    coro = loop()
    with pytest.raises(RuntimeError, match="the setup loop is not running"):
        portal.call(coro)
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"  # no "never awaited" warning
    portal.stop()  # a second stop does nothing


def test_abandon_stops_the_loop_without_waiting() -> None:
    portal = LoopPortal("flowrun-test-loop")
    portal.start()

    async def loop_and_thread() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
        return asyncio.get_running_loop(), threading.current_thread()

    loop, thread = portal.call(loop_and_thread())
    portal.abandon()
    assert not portal.running
    thread.join(5)
    assert not thread.is_alive()
    assert not loop.is_running()
    loop.close()


def test_tick_is_called_between_slices_with_the_seconds_waited(portal: LoopPortal) -> None:
    waited: list[float] = []

    async def slow() -> str:
        await asyncio.sleep(0.6)
        return "done"

    assert portal.call(slow(), tick=waited.append) == "done"
    assert waited
    assert waited == sorted(waited)
    assert 0.2 <= waited[0] <= waited[-1] < 5
