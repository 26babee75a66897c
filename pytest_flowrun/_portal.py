"""``LoopPortal``: an asyncio event loop in a daemon thread, driven from the main thread.

The idea of anyio's ``BlockingPortal``: one small object owns the loop and its thread,
with a clear ``start`` / ``call(coro)`` / ``stop``. The setup run lives on this loop for
the whole session, so setup keeps going while tests run. The main thread only ever waits
on futures, in short slices, so Ctrl-C interrupts it; ``_interrupted`` is the one place
where an interrupt of the main thread reaches the loop. Between slices it calls the
caller's ``check``, so an interrupt raised on the loop (a task's ``KeyboardInterrupt``)
reaches the main thread within a slice, then its ``tick`` (where the live progress
draws). A ``KeyboardInterrupt`` or ``SystemExit`` that a
coroutine raises is carried back to the main thread instead of escaping the loop, which
would stop the loop thread (asyncio re-raises them out of ``run_forever``).

Imports only the standard library; nothing happens until ``start``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: How long the main thread blocks at a time while waiting for the loop thread.
_POLL_S = 0.25
#: How long ``stop`` waits for the loop's async generators, then for its thread.
_STOP_S = 5.0


class LoopPortal:
    """An event loop running in a daemon thread, started on demand and stopped once.

    ``start`` creates the loop and its thread (once; later calls do nothing), ``call``
    runs a coroutine there and waits for its result, ``stop`` shuts the loop down and
    closes it, ``abandon`` only asks it to stop. A daemon thread never holds up the
    interpreter's exit: a loop left running by a second Ctrl-C dies with the process.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        #: Called on the main thread with what interrupted a wait (see ``_interrupted``).
        self.on_interrupt: Callable[[BaseException], None] | None = None

    @property
    def running(self) -> bool:
        """True between ``start`` and ``stop`` (or ``abandon``)."""
        return self._loop is not None

    def start(self) -> None:
        """Create the loop and start its thread, unless already started."""
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=_serve, args=(loop,), name=self._name, daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread

    def call(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        check: Callable[[], None] | None = None,
        tick: Callable[[float], None] | None = None,
    ) -> T:
        """Run ``coro`` on the loop and wait for its result; Ctrl-C interrupts the wait.

        ``check`` is called on the main thread between wait slices; what it raises
        interrupts the wait like Ctrl-C. ``tick`` is called after it with the seconds
        waited so far (the live progress display draws there). Raises what ``coro``
        raises (``KeyboardInterrupt`` and ``SystemExit`` included), ``RuntimeError`` if
        the portal is not running, and whatever interrupts the main thread meanwhile
        (after ``_interrupted``).
        """
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("flowrun: the setup loop is not running")
        future = asyncio.run_coroutine_threadsafe(_carried(coro), loop)
        try:
            return _result(future, check, tick)
        except _Carried as carried:
            escaped = carried.exc
        except BaseException as exc:
            if not _raised_by(future, exc):
                self._interrupted(future, exc)
            raise
        raise escaped  # outside the except block: the exception as the coroutine raised it

    def check_requester(self, task: str, is_async: bool) -> None:
        """Refuse to hand task ``task``'s value to the code asking for it, if it cannot use
        it; on flowrun's own loop, any code can (tasks hand tests plain data)."""

    def _interrupted(self, future: concurrent.futures.Future[Any], exc: BaseException) -> None:
        """The main thread stopped waiting for ``future`` because of ``exc`` (Ctrl-C, most
        likely): cancel it, and tell ``on_interrupt``.

        This is the one place an interrupt of the main thread reaches the loop: whatever
        must happen from the moment the main thread sees it belongs here.
        """
        future.cancel()
        if self.on_interrupt is not None:
            self.on_interrupt(exc)

    def stop(self) -> None:
        """Finalize the loop's async generators, stop the loop, join its thread, close it.

        Each wait is bounded: a thread still busy after it is left to the exit, its loop
        unclosed. Does nothing if the portal is not running.
        """
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        if thread.is_alive():
            # Best effort: an async generator left open must not stop the shutdown.
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop).result(_STOP_S)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_STOP_S)
        if not thread.is_alive():
            loop.close()

    def abandon(self) -> None:
        """Ask the loop to stop, without waiting for anything (a last resort)."""
        loop, self._loop, self._thread = self._loop, None, None
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)


class _Carried(Exception):
    """Carries a ``KeyboardInterrupt`` or ``SystemExit`` out of the loop as a plain error."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(type(exc).__name__)
        self.exc = exc


async def _carried(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` in the same task, turning what would stop the loop into ``_Carried``."""
    try:
        return await coro
    except (KeyboardInterrupt, SystemExit) as exc:
        raise _Carried(exc) from None


def _result(
    future: concurrent.futures.Future[T],
    check: Callable[[], None] | None,
    tick: Callable[[float], None] | None = None,
) -> T:
    """Wait for ``future``'s result in slices short enough for Ctrl-C to get through,
    calling ``check``, then ``tick`` with the seconds waited, between them."""
    began = time.monotonic()
    while True:
        try:
            return future.result(_POLL_S)
        except TimeoutError:
            if future.done():  # the coroutine itself raised TimeoutError
                raise
        if check is not None:
            check()
        if tick is not None:
            tick(time.monotonic() - began)


def _raised_by(future: concurrent.futures.Future[Any], exc: BaseException) -> bool:
    """Did ``exc`` come out of ``future`` (rather than interrupt the wait for it)?"""
    if not future.done():
        return False
    if future.cancelled():
        return isinstance(exc, concurrent.futures.CancelledError)
    return future.exception() is exc


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()
