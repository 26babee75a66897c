"""Task execution: one attempt of one task, bounded by its timeout, its outcome captured.

Coroutine functions run on the running event loop; sync functions run in a
``concurrent.futures.Executor`` (a thread pool flowrun owns, or any executor passed in,
which then stays the caller's to shut down). A sync call's timeout starts when a worker
picks it up, not while it waits for one, where that can be known (see ``_Placement``). A
sync call that overruns its timeout cannot be killed: it is abandoned, recorded as timed
out, and if it was a generator that later finishes its setup, its teardown runs straight
away so nothing it opened is leaked.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import itertools
import sys
import time
import types
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

from flowrun._sync import (
    SyncGeneratorStarter,
    call,
    call_elsewhere,
    close_quietly,
    finish_generator,
    signal_then_call,
    when_running,
)
from flowrun._threads import DaemonThreadPool
from flowrun._wakeup import Wakeup
from flowrun.errors import GeneratorProtocolError, TaskTimeoutError
from flowrun.state import TaskStatus
from flowrun.task import TaskKind, TaskSpec

__all__ = ["AttemptOutcome", "GeneratorProtocolError", "TaskExecutor"]


class _Placement(enum.Enum):
    """Where an executor runs its calls, and so how a sync call's timeout is started.

    Only a thread pool of this process (a ``ThreadPoolExecutor``, subclasses included, or
    flowrun's own pool) counts as ``THREADS``: the call signals the loop when a worker
    picks it up, and runs in a copy of the caller's ``contextvars`` context. Anything else
    is assumed to run its calls in other processes: what is sent must pickle, and nothing
    of the loop is. A ``ProcessPoolExecutor`` says when it hands a call to its workers
    (``Future.running()``, polled); any other executor (Dask's ``ClientExecutor``, an
    executor of your own) may never say so, so a call's timeout starts when it is
    submitted, its wait for a worker included.
    """

    THREADS = "threads of this process"
    PROCESS_POOL = "a process pool"
    ELSEWHERE = "other processes"


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """How an attempt (or a teardown) ended: SUCCESS, FAILED or TIMED_OUT.

    ``value`` is the result (the yielded value of a generator task), ``error`` the
    exception of a failure, and ``handle`` the suspended generator awaiting teardown
    (also on a TIMED_OUT attempt that set up late: the caller must tear it down).
    """

    status: TaskStatus
    value: Any = None
    error: BaseException | None = None
    handle: Any = None


_SUCCESS = TaskStatus.SUCCESS
_SYNC = TaskKind.SYNC
#: A sync task returning a coroutine is a sync decorator around a coroutine function
#: (``functools.wraps`` and ``return fn(*args)``): the coroutine is awaited on the loop
#: rather than recorded, never run, as the task's result.
_COROUTINE = types.CoroutineType
_ASYNC = TaskKind.ASYNC


class _UnfrozenOutcome:
    """The slot layout of ``AttemptOutcome`` without its frozen ``__setattr__``."""

    __slots__ = AttemptOutcome.__slots__

    status: TaskStatus
    value: Any
    error: BaseException | None
    handle: Any


def _success(value: Any) -> AttemptOutcome:
    """``AttemptOutcome(SUCCESS, value)``, without the frozen dataclass ``__init__``.

    Every attempt that succeeds makes one, and the frozen ``__init__`` (one
    ``object.__setattr__`` per field) was a fifth of the executor's cost on a no-op task;
    see ``flowrun.state._task_record`` for the same construction.
    """
    outcome = _UnfrozenOutcome()
    outcome.status = _SUCCESS
    outcome.value = value
    outcome.error = None
    outcome.handle = None
    outcome.__class__ = AttemptOutcome  # type: ignore[assignment]
    return outcome  # type: ignore[return-value]


class TaskExecutor:
    """Runs task attempts and teardowns for one run.

    ``executor`` is used for sync tasks and is never shut down by flowrun; without one,
    a daemon-thread pool is created on first use and closed by ``close()``. A cancelled
    sync generator setup already running in a thread is waited for up to
    ``cancel_grace_s`` (see ``_settle_cancelled``); 0 abandons it at once. An executor
    that is not a thread pool of this process is taken to run its calls in other
    processes (``runs_in_processes``; see ``_Placement`` for what that changes).
    """

    def __init__(self, executor: Executor | None = None, *, cancel_grace_s: float = 0.0) -> None:
        self._executor = executor
        self.cancel_grace_s = cancel_grace_s
        self._own_pool: DaemonThreadPool | None = None
        self._wakeup: Wakeup | None = None  # while a run's sync calls may block (_call_sync)
        self._woken = False
        self._placement = _placement_of(executor)
        self._in_threads = self._placement is _Placement.THREADS
        # The Context each sync generator's setup ran in: its teardown runs there too, so
        # a context variable set before ``yield`` can be read and reset after it.
        self._setup_contexts: dict[Generator[Any, None, None], contextvars.Context] = {}

    @property
    def runs_in_processes(self) -> bool:
        """True unless sync tasks run in threads of this process (see ``_Placement``)."""
        return not self._in_threads

    @property
    def name(self) -> str:
        """The class name of the executor that runs sync tasks (flowrun's own pool included)."""
        executor = self._executor
        return type(executor).__name__ if executor is not None else DaemonThreadPool.__name__

    def close(self) -> None:
        """Shut down the pool flowrun created, without waiting for abandoned threads."""
        pool, self._own_pool = self._own_pool, None
        # True: work that outlives the run (an abandoned teardown) must not set another.
        wakeup, self._wakeup, self._woken = self._wakeup, None, True
        if wakeup is not None:
            wakeup.remove()
        if pool is not None:
            # Without cancel_futures: a queued call may be the teardown of a setup that was
            # abandoned just as it finished (see _abandon), and it must still run. Calls of
            # cancelled attempts were cancelled with their asyncio futures already.
            pool.shutdown(wait=False)

    async def run(
        self,
        spec: TaskSpec,
        kwargs: Mapping[str, Any],
        timeout_s: float | None,
        on_start: Callable[[float], None] | None = None,
    ) -> AttemptOutcome:
        """Run one attempt of ``spec`` with ``kwargs``; never raises except ``CancelledError``.

        A sync call submitted to an injected executor may wait for a free worker first:
        ``on_start`` is then called with the time (``time.time()``) it started running.
        """
        kind = spec.kind
        starter: SyncGeneratorStarter | None = None
        if self._executor is None:
            on_start = None  # flowrun's own pool starts every call at once
        try:
            if timeout_s is None:
                if kind is _ASYNC:
                    return _success(await spec.fn(**kwargs))
                if kind is _SYNC:
                    result = await self._call_sync(spec.fn, kwargs, started=on_start)
                    if type(result) is _COROUTINE:  # see _COROUTINE
                        result = await result
                    return _success(result)
            async with asyncio.timeout(timeout_s) as scope:
                if kind is _ASYNC:
                    result = await spec.fn(**kwargs)
                    if timeout_s is not None and scope.expired():  # it swallowed the cancel
                        return _overran(spec, timeout_s)
                    return _success(result)
                if kind is _SYNC:
                    result = await self._call_sync(
                        spec.fn, kwargs, scope, timeout_s, None, on_start
                    )
                    if type(result) is _COROUTINE:
                        result = await result
                    return _success(result)
                if kind is TaskKind.ASYNC_GENERATOR:
                    agen = spec.fn(**kwargs)
                    try:
                        value = await anext(agen)
                    except StopAsyncIteration:
                        raise GeneratorProtocolError(
                            spec.name, "is a generator that returned without yielding"
                        ) from None
                    if timeout_s is not None and scope.expired():
                        return _overran(spec, timeout_s, agen)
                    return AttemptOutcome(_SUCCESS, value, handle=agen)
                starter = SyncGeneratorStarter(spec, asyncio.get_running_loop())
                gen, value = await self._call_sync(
                    starter.start, kwargs, scope, timeout_s, None, on_start
                )
                self._setup_contexts[gen] = starter.context
                return AttemptOutcome(_SUCCESS, value, handle=gen)
        except TimeoutError as exc:
            if timeout_s is not None and scope.expired():
                if starter is not None:
                    self._abandon(starter)
                error = TaskTimeoutError(spec.name, timeout_s)
                error.__cause__ = None
                return AttemptOutcome(TaskStatus.TIMED_OUT, error=error)
            return AttemptOutcome(TaskStatus.FAILED, error=exc)
        except asyncio.CancelledError as exc:
            current = asyncio.current_task()
            if current is None or not current.cancelling():
                if starter is not None:
                    self._abandon(starter)
                return AttemptOutcome(TaskStatus.FAILED, error=exc)  # the task's own code
            if starter is not None:
                gen = await self._settle_cancelled(starter)
                if gen is not None:  # set up after all: the caller tears it down in order
                    current.uncancel()
                    self._setup_contexts[gen] = starter.context
                    return AttemptOutcome(TaskStatus.CANCELLED, handle=gen)
            raise
        except BaseException as exc:
            # Anything else a body raises, BaseException included (SystemExit,
            # KeyboardInterrupt, a test framework's outcomes), ends the attempt: let through,
            # it would end the event loop's thread and leave the run hanging.
            return AttemptOutcome(TaskStatus.FAILED, error=exc)

    async def teardown(
        self, spec: TaskSpec, handle: Any, timeout_s: float | None
    ) -> AttemptOutcome:
        """Resume a generator task after its ``yield`` so its teardown code runs."""
        try:
            async with asyncio.timeout(timeout_s) as scope:
                if spec.kind is TaskKind.ASYNC_GENERATOR:
                    await _finish_async_generator(spec.name, handle)
                else:
                    await self._call_sync(
                        finish_generator,
                        {"name": spec.name, "gen": handle},
                        scope,
                        timeout_s,
                        self._setup_contexts.pop(handle, None),
                    )
            return AttemptOutcome(_SUCCESS)
        except TimeoutError as exc:
            if timeout_s is not None and scope.expired():
                return AttemptOutcome(
                    TaskStatus.TIMED_OUT,
                    error=TaskTimeoutError(spec.name, timeout_s, phase="teardown"),
                )
            return AttemptOutcome(TaskStatus.FAILED, error=exc)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # as for an attempt: see run()
            return AttemptOutcome(TaskStatus.FAILED, error=exc)

    def _pool(self) -> Executor:
        if self._executor is not None:
            return self._executor
        if self._own_pool is None:
            self._own_pool = DaemonThreadPool()
        return self._own_pool

    def _call_sync(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        scope: asyncio.Timeout | None = None,
        timeout_s: float | None = None,
        context: contextvars.Context | None = None,
        started: Callable[[float], None] | None = None,
    ) -> asyncio.Future[Any]:
        """Submit ``fn`` to the pool; with ``scope``, its deadline starts when ``fn`` starts.

        In a thread, ``fn`` runs in ``context``, or in a fresh copy of the current one.
        ``started`` is called with the time ``fn`` started running.

        A call waiting for a worker of a busy pool is queued, not running, so its timeout
        must not tick yet: the deadline is lifted at submission and set to ``timeout_s``
        from the moment a worker picks the call up.
        """
        pool = self._pool()
        loop = asyncio.get_running_loop()
        if not self._woken:  # a signal may now land on a thread blocked in a sync call
            self._woken = True
            self._wakeup = Wakeup.install(loop)
        on_start: Callable[[], None] | None = None
        deadline = scope if timeout_s is not None else None
        if self._placement is _Placement.ELSEWHERE:
            # It never says when it starts: its timeout runs from now (see _Placement).
            return asyncio.wrap_future(pool.submit(call_elsewhere, fn, kwargs, next(_SERIALS)))
        if deadline is not None:
            deadline.reschedule(None)
        if deadline is not None or started is not None:

            def on_start() -> None:
                if awaited.done():  # the attempt is over: the scope may be gone already
                    return
                if deadline is not None and timeout_s is not None:
                    deadline.reschedule(loop.time() + timeout_s)
                if started is not None:
                    started(time.time())

        if not self._in_threads:
            future: Future[Any] = pool.submit(call_elsewhere, fn, kwargs, next(_SERIALS))
            awaited = asyncio.wrap_future(future)
            if on_start is not None:  # a worker process cannot signal us: watch the future
                when_running(future, awaited, on_start, loop)
            return awaited
        # A fresh copy per call: one Context cannot be entered by two threads at once,
        # and an abandoned call may still be inside its copy.
        if context is None:
            context = contextvars.copy_context()
        run_in_copy: Callable[..., Any] = context.run
        if on_start is None:
            future = pool.submit(run_in_copy, call, fn, kwargs)
        else:
            future = pool.submit(signal_then_call, loop, on_start, run_in_copy, fn, kwargs)
        awaited = asyncio.wrap_future(future)
        return awaited

    async def _settle_cancelled(self, starter: SyncGeneratorStarter) -> Any:
        """A sync generator's setup was cancelled: wait up to the grace for it to end.

        The thread cannot be stopped, and a setup abandoned while it runs would be undone
        by its own thread whenever it ends: after the teardown of the tasks it uses, maybe
        after the process has gone. Waited for, a setup that completes is returned to be
        torn down in dependency order. Returns the generator, or None (abandoned).
        """
        if starter.begun and self.cancel_grace_s > 0:
            with contextlib.suppress(asyncio.CancelledError):  # a second interrupt: give up
                await asyncio.wait((starter.ended,), timeout=self.cancel_grace_s)
        return starter.abandon()

    def _abandon(self, starter: SyncGeneratorStarter) -> None:
        gen = starter.abandon()
        if gen is not None:  # its setup finished just as we gave up on it: undo it now
            self._pool().submit(close_quietly, gen)


def _overran(spec: TaskSpec, timeout_s: float, handle: Any = None) -> AttemptOutcome:
    """An async attempt that swallowed the cancellation at its timeout and ended later.

    It still ran past ``timeout_s``, so it timed out, whatever it returned. (If it kept
    going past the grace period, the scheduler has already recorded it so.)
    """
    return AttemptOutcome(
        TaskStatus.TIMED_OUT, error=TaskTimeoutError(spec.name, timeout_s), handle=handle
    )


#: Numbers every call sent elsewhere: see ``flowrun._sync.call_elsewhere``.
_SERIALS = itertools.count()


def _placement_of(executor: Executor | None) -> _Placement:
    if executor is None or isinstance(executor, DaemonThreadPool):
        return _Placement.THREADS
    # Without importing concurrent.futures.thread, nor .process (and multiprocessing), on
    # flowrun's import: if nobody imported a pool's module, the executor is not that pool.
    thread = sys.modules.get("concurrent.futures.thread")
    if thread is not None and isinstance(executor, thread.ThreadPoolExecutor):
        return _Placement.THREADS
    process = sys.modules.get("concurrent.futures.process")
    if process is not None and isinstance(executor, process.ProcessPoolExecutor):
        return _Placement.PROCESS_POOL
    return _Placement.ELSEWHERE


async def _finish_async_generator(name: str, agen: AsyncGenerator[Any, None]) -> None:
    try:
        await anext(agen)
    except StopAsyncIteration:
        return
    await agen.aclose()
    raise GeneratorProtocolError(name, "yielded more than once; a task yields exactly once")
