"""A thread pool whose workers never hold the interpreter at exit.

``concurrent.futures.ThreadPoolExecutor`` joins its workers when the interpreter exits, so
one sync task blocked forever (and abandoned after its timeout) would hang the process.
flowrun's own pool uses daemon threads and grows a thread whenever none is idle: the
scheduler already bounds how many task bodies run at once, and a thread abandoned by a
timeout must not take a slot from the tasks after it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

__all__ = ["DaemonThreadPool"]

P = ParamSpec("P")
T = TypeVar("T")

_STOP = None


class DaemonThreadPool(Executor):
    """An executor running each call on an idle daemon thread, starting one if none is idle."""

    def __init__(self, thread_name_prefix: str = "flowrun") -> None:
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._idle = 0
        self._threads: list[threading.Thread] = []
        self._shutdown = False
        self._prefix = thread_name_prefix

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a DaemonThreadPool after shutdown")
            self._queue.put((future, lambda: fn(*args, **kwargs)))
            if self._idle > 0:
                self._idle -= 1
            else:
                thread = threading.Thread(
                    target=self._work, name=f"{self._prefix}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            future, call = item
            if future.set_running_or_notify_cancel():
                try:
                    result = call()
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del item, future, call
            with self._lock:
                if self._shutdown:
                    return
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; idle threads exit, busy ones exit when their call returns.

        With ``wait`` it joins the threads, which blocks on a call that never returns:
        flowrun itself always shuts down with ``wait=False``.
        """
        with self._lock:
            self._shutdown = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    item[0].cancel()
        for _ in threads:
            self._queue.put(_STOP)
        if wait:
            for thread in threads:
                thread.join()

    @property
    def thread_count(self) -> int:
        """Threads started so far."""
        return len(self._threads)
