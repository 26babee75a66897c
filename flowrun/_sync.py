"""The thread side of sync tasks: what runs in a worker of the pool.

A sync generator's setup run to its ``yield`` (``SyncGeneratorStarter``), the call
wrapper that turns a ``StopIteration`` into an error an asyncio future accepts, the
signal that a queued call has started, and the teardown of a generator in its thread.
Imports only the standard library and ``flowrun.errors``; ``flowrun.executor`` uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable, Generator, Mapping
from concurrent.futures import Future
from typing import Any

from flowrun.errors import GeneratorProtocolError
from flowrun.task import TaskSpec

__all__ = [
    "SyncGeneratorStarter",
    "call",
    "call_elsewhere",
    "close_quietly",
    "finish_generator",
    "signal_then_call",
    "when_running",
]


class SyncGeneratorStarter:
    """Runs a sync generator to its ``yield`` in a worker thread.

    ``begun`` turns true when the thread starts the setup, and ``ended`` (a future of the
    loop) completes when the setup is over, however it ended. If the caller abandons it
    (timeout, cancellation) before the setup finishes, the worker runs the teardown
    itself as soon as the setup completes.
    """

    __slots__ = ("_abandoned", "_delivered", "_lock", "_loop", "begun", "context", "ended", "spec")

    def __init__(self, spec: TaskSpec, loop: asyncio.AbstractEventLoop) -> None:
        self.spec = spec
        self.context = contextvars.copy_context()
        self.begun = False
        self.ended: asyncio.Future[None] = loop.create_future()
        self._loop = loop
        self._lock = threading.Lock()
        self._abandoned = False
        self._delivered: Generator[Any, None, None] | None = None

    def start(self, **kwargs: Any) -> tuple[Generator[Any, None, None], Any]:
        """Run the setup in ``context``; signal ``ended`` once out of it.

        The signal must come after the Context is left: on it, the loop may hand the
        generator to its teardown, which enters the same Context on another thread.
        """
        self.begun = True
        try:
            return self.context.run(self._setup, kwargs)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
                self._loop.call_soon_threadsafe(_resolve, self.ended)

    def _setup(self, kwargs: Mapping[str, Any]) -> tuple[Generator[Any, None, None], Any]:
        gen = self.spec.fn(**kwargs)
        try:
            value = next(gen)
        except StopIteration:
            raise GeneratorProtocolError(
                self.spec.name, "is a generator that returned without yielding"
            ) from None
        with self._lock:
            abandoned = self._abandoned
            if not abandoned:
                self._delivered = gen
        if abandoned:
            close_quietly(gen)
        return gen, value

    def abandon(self) -> Generator[Any, None, None] | None:
        with self._lock:
            self._abandoned = True
            return self._delivered


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


#: How often a call queued in a process pool is checked for having started.
_POLL_S = 0.005


def signal_then_call(
    loop: asyncio.AbstractEventLoop,
    on_start: Callable[[], None],
    run: Callable[..., Any],
    fn: Callable[..., Any],
    kwargs: Mapping[str, Any],
) -> Any:
    """In a worker thread: tell the loop the call starts now, then make it."""
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
        loop.call_soon_threadsafe(on_start)
    return run(call, fn, kwargs)


def call(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """Call ``fn`` in a worker; a ``StopIteration`` leaving it becomes a ``RuntimeError``.

    An asyncio future refuses ``StopIteration`` (as a generator does since PEP 479), and
    the refusal happens in a loop callback: unconverted, the attempt would never end.
    """
    try:
        return fn(**kwargs)
    except StopIteration as exc:
        raise RuntimeError(f"{_name_of(fn)} raised StopIteration") from exc


def call_elsewhere(fn: Callable[..., Any], kwargs: Mapping[str, Any], serial: int) -> Any:
    """``call`` for an executor whose calls run in other processes; ``serial`` is unused.

    Each call carries a number of its own so that an executor that takes equal calls for
    one (Dask's ``pure=True``, its default, names a call by hashing its arguments) never
    hands a retry the result of the attempt before it, nor one task another's.
    """
    return call(fn, kwargs)


def _name_of(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def when_running(
    future: Future[Any],
    awaited: asyncio.Future[Any],
    on_start: Callable[[], None],
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Call ``on_start`` once a process pool hands ``future`` to a worker."""
    if awaited.done():
        return
    if future.running() or future.done():
        on_start()
    else:
        loop.call_later(_POLL_S, when_running, future, awaited, on_start, loop)


def finish_generator(name: str, gen: Generator[Any, None, None]) -> None:
    try:
        next(gen)
    except StopIteration:
        return
    gen.close()
    raise GeneratorProtocolError(name, "yielded more than once; a task yields exactly once")


def close_quietly(gen: Generator[Any, None, None]) -> None:
    try:
        next(gen)
    except StopIteration:
        pass
    except BaseException:
        pass  # nobody is left to report to: the attempt was already recorded as timed out
    else:
        gen.close()
