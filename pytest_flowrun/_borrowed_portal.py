"""``BorrowedLoopPortal``: a ``LoopPortal`` over pytest-asyncio's session loop, which its
``asyncio.Runner`` owns and runs now and then (``--flowrun-loop asyncio-session``).

Whenever pytest does not run the loop, a thread of flowrun's own (the *driver*) does; the
runner's ``run`` is wrapped with "stop the driver, run, restart the driver", so the loop
is handed over around each session-loop test or fixture. Code on the loop itself asking
for a task, or code on another loop asking for an async task, is refused instead of
deadlocking or getting a value bound to the wrong loop. ``_borrowed_loop`` holds the
mode's checks and builds this portal.

Imports pytest, the standard library and ``_portal``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from pytest_flowrun._portal import _POLL_S, LoopPortal

T = TypeVar("T")

#: The mode's name, as ``--flowrun-loop`` takes it.
MODE = "asyncio-session"


class BorrowedLoopPortal(LoopPortal):
    """A ``LoopPortal`` over a loop that an ``asyncio.Runner`` owns and runs now and then.

    ``start`` wraps the runner's ``run`` and starts the driver; ``call`` is the parent's
    (a coroutine submitted thread-safely, waited for in slices), after making sure the
    loop is driven; ``stop`` stops the driver and unwraps ``run``, leaving the loop open
    for its runner to close. ``call`` and ``start`` from code running on the loop itself
    (a task fixture requested dynamically in a session-loop test) raise ``RuntimeError``
    instead of deadlocking.
    """

    def __init__(self, name: str, runner: asyncio.Runner) -> None:
        super().__init__(name)
        self._runner = runner
        #: The driver (a thread running the loop while pytest does not) as the event it
        #: sets once the loop no longer runs there, and whether it was asked to stop (the
        #: loop's ``stop`` is scheduled once per driver: a second one would stop the
        #: runner's next ``run`` early).
        self._driver: tuple[threading.Event, asyncio.AbstractEventLoop] | None = None
        self._stopping = False

    def start(self) -> None:
        """Wrap the runner's ``run`` and drive its loop, unless already started."""
        if self._loop is not None:
            return
        loop = self._runner.get_loop()
        _refuse_inside(loop)
        original = self._runner.run

        def run(coro: Coroutine[Any, Any, T], *, context: Any = None) -> T:
            if _running_here() is not None:  # the runner raises "called from a running loop"
                return original(coro, context=context)
            try:
                self._pause()
            except BaseException:  # Ctrl-C while the driver stops: the coroutine never runs
                coro.close()
                raise
            try:
                return original(coro, context=context)
            finally:
                self._resume()

        self._runner.run = run  # type: ignore[method-assign]
        self._loop = loop
        self._resume()

    def call(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        check: Callable[[], None] | None = None,
        tick: Callable[[float], None] | None = None,
    ) -> T:
        """``LoopPortal.call``, after refusing a call from the loop and resuming the driver
        (a Ctrl-C during a hand-over may have left it stopped)."""
        loop = self._loop
        if loop is not None:
            try:
                _refuse_inside(loop)
                self._resume()  # Ctrl-C may come while it waits for a blocked driver
            except BaseException:
                coro.close()
                raise
        return super().call(coro, check=check, tick=tick)

    def check_requester(self, task: str, is_async: bool) -> None:
        """Fail the setup of code on another event loop asking for an async task: a
        fixture on a function-scoped loop calling ``request.getfixturevalue``, which the
        checks before setup cannot see, would get a value bound to the session loop."""
        running = _running_here()
        if is_async and running is not None and running is not self._loop:
            pytest.fail(
                f"flowrun: async task {task!r} was requested from code running on another "
                f"event loop than pytest-asyncio's session loop (--flowrun-loop {MODE}), "
                "where its values may not work: run that fixture or test on the session "
                'loop (loop_scope="session", or asyncio_default_fixture_loop_scope / '
                "asyncio_default_test_loop_scope = session in the ini file)",
                pytrace=False,
            )

    def stop(self) -> None:
        """Stop the driver and give the runner its ``run`` back; the loop stays open."""
        if self._loop is None:
            return
        self._pause()
        self._loop = None
        vars(self._runner).pop("run", None)

    def abandon(self) -> None:
        """Ask the driver to stop, without waiting; give the runner its ``run`` back."""
        self._loop = None
        vars(self._runner).pop("run", None)
        if self._driver is not None and not self._stopping:
            loop = self._driver[1]
            self._stopping = True
            if not loop.is_closed():
                loop.call_soon_threadsafe(loop.stop)

    def _resume(self) -> None:
        """Drive the loop from a thread, unless it is driven, stopped, or running here (a
        fixture on another loop asking for a task still needs the session loop driven)."""
        loop = self._loop
        if loop is None or _running_here() is loop:
            return
        self._pause()  # a driver asked to stop and not yet gone: wait for it
        done = threading.Event()
        thread = threading.Thread(target=_drive, args=(loop, done), name=self._name, daemon=True)
        self._driver, self._stopping = (done, loop), False
        thread.start()

    def _pause(self) -> None:
        """Stop the driver and wait until it no longer runs the loop (Ctrl-C interrupts).

        Waits on the driver's event, not with ``Thread.join``: a join that Ctrl-C
        interrupts can mark a thread still running as stopped (CPython 3.11), and the
        next driver would then find the loop "already running" and die.
        """
        if self._driver is None:
            return
        done, loop = self._driver
        if not self._stopping:
            self._stopping = True
            loop.call_soon_threadsafe(loop.stop)
        while not done.wait(_POLL_S):
            pass
        self._driver = None


def _drive(loop: asyncio.AbstractEventLoop, done: threading.Event) -> None:
    """The driver's body: run ``loop`` until it is stopped, then set ``done``."""
    try:
        loop.run_forever()
    finally:
        done.set()


def _running_here() -> asyncio.AbstractEventLoop | None:
    """The loop running in the calling thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _refuse_inside(loop: asyncio.AbstractEventLoop) -> None:
    """Raise ``RuntimeError`` if called from code running on ``loop`` (it would deadlock)."""
    if _running_here() is loop:
        raise RuntimeError(
            "flowrun: a task was requested from code running on pytest-asyncio's session "
            "loop, which would wait for the loop it blocks; name the task as a parameter "
            "of the test or fixture (or in @pytest.mark.usefixtures) instead of requesting "
            "it with request.getfixturevalue"
        )
