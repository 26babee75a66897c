"""flowrun's own thread pool: daemon threads, one more whenever none is idle."""

from __future__ import annotations

import threading
import time

import pytest

from flowrun._threads import DaemonThreadPool


def test_runs_calls_on_daemon_threads_and_returns_their_results() -> None:
    pool = DaemonThreadPool(thread_name_prefix="probe")
    try:

        def add(a: int, b: int = 0) -> tuple[int, threading.Thread]:
            return a + b, threading.current_thread()

        future = pool.submit(add, 2, b=3)
        value, thread = future.result(timeout=2)
        assert value == 5
        assert thread.daemon
        assert thread.name.startswith("probe-")
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result(timeout=2)
    finally:
        pool.shutdown(wait=True)


def test_a_blocked_call_does_not_hold_up_the_next_one() -> None:
    pool = DaemonThreadPool()
    release = threading.Event()
    try:
        blocked = pool.submit(release.wait, 2)
        assert pool.submit(lambda: "free").result(timeout=2) == "free"
        assert not blocked.done()
        assert pool.thread_count == 2
    finally:
        release.set()
        pool.shutdown(wait=True)


def test_an_idle_thread_is_reused() -> None:
    pool = DaemonThreadPool()
    try:
        for _ in range(5):
            pool.submit(lambda: None).result(timeout=2)
            deadline = time.monotonic() + 2  # it counts itself idle just after the result
            while pool._idle == 0 and time.monotonic() < deadline:
                time.sleep(0.001)
        assert pool.thread_count == 1
    finally:
        pool.shutdown(wait=True)


def test_shutdown_stops_the_threads_and_refuses_new_calls() -> None:
    pool = DaemonThreadPool()
    pool.submit(lambda: None).result(timeout=2)
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(lambda: None)
