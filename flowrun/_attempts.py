"""The attempts of a run in flight: started under the limit, watched, released.

Each attempt runs in an asyncio task of its own, in its own copy of the run's Context,
and holds one of ``max_parallel`` slots, and its task's resources if it declared any
(``flowrun._resources``), until it ends or is given up on. An async
attempt that ignores its cancellation at its timeout is given up on the grace period
later (its watchdog); a sync one queued behind a busy injected pool has its start time
moved to when a worker picked it up. What an attempt's outcome means for the run is the
run's to decide: ``Attempts`` hands each one to the callbacks it was given. Imports the
gate, the grace helper, the ledger, the resources, the teardown and the executor.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flowrun._deadlines import Deadlines
from flowrun._gate import Gate
from flowrun._grace import Grace
from flowrun._ledger import Ledger
from flowrun._resources import Resources
from flowrun._teardown import Teardown
from flowrun.context import RunContext
from flowrun.dag import Dag
from flowrun.executor import AttemptOutcome, TaskExecutor, _overran, _success
from flowrun.state import TaskStatus
from flowrun.task import TaskKind, TaskSpec

__all__ = ["Attempts"]

_SUCCESS = TaskStatus.SUCCESS
_CANCELLED = TaskStatus.CANCELLED
_FAILED = TaskStatus.FAILED
_ASYNC = TaskKind.ASYNC
_ASYNC_GENERATOR = TaskKind.ASYNC_GENERATOR
_current_task = asyncio.current_task
#: ``asyncio.Task(..., eager_start=True)`` exists from Python 3.12 on.
_EAGER = sys.version_info >= (3, 12)
_CREATE_TASK = asyncio.BaseEventLoop.create_task
_EMPTY: Mapping[str, Any] = {}


class Attempts:
    """Starts the gate's ready tasks while slots are free and follows each attempt.

    ``succeeded(i, value)`` and ``failed(i, outcome)`` receive the outcome of an attempt
    the run still waits for; ``cancelled(i)`` an attempt cancelled before it ended.
    ``stopped`` (set by the run, from any thread) means: start nothing more.
    """

    __slots__ = (
        "_base_context",
        "_cancelled",
        "_context",
        "_deadlines",
        "_executor",
        "_failed",
        "_gate",
        "_grace",
        "_launching",
        "_ledger",
        "_limit",
        "_loop",
        "_parents",
        "_resources",
        "_results",
        "_spawn",
        "_specs",
        "_succeeded",
        "_teardown",
        "_timeouts",
        "counts",
        "running",
        "stopped",
        "tasks",
        "timers",
    )

    def __init__(
        self,
        dag: Dag,
        timeouts: Sequence[float | None],
        limit: int,
        context: RunContext[Any] | None,
        results: list[Any],
        parts: tuple[Gate, Ledger, Teardown, Grace, TaskExecutor, Resources | None],
        succeeded: Callable[[int, Any], None],
        failed: Callable[[int, AttemptOutcome], None],
        cancelled: Callable[[int], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._base_context = contextvars.copy_context()
        self._specs = dag.specs
        self._parents = dag.parents
        self._timeouts = timeouts
        self._limit = limit
        self._context = context
        self._results = results
        (self._gate, self._ledger, self._teardown, self._grace, self._executor) = parts[:5]
        self._resources = parts[5]
        self._succeeded = succeeded
        self._failed = failed
        self._cancelled = cancelled
        self.counts = [0] * len(dag.specs)  # attempts started, per task
        self.running = 0
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self.stopped = False
        self._launching = False
        self._spawn = _spawner(self._loop)
        self._deadlines = Deadlines(self._grace.grace_s, self._is_current, self._overdue)

    def launch(self) -> None:
        """Start ready tasks while slots are free (and, for those that declare some, resources:
        a task that does not fit is parked and the next one in priority order is tried).

        An attempt may run to its end inside its own creation (an eager start, see
        ``_spawner``), ending in a ``launch`` of its own: that one returns at once and
        this loop starts what became ready, so a chain of eager attempts is a loop, not a
        recursion.
        """
        gate = self._gate
        if not gate or self.stopped or self._launching:
            return
        self._launching = True
        try:
            base = self._base_context
            spawn = self._spawn
            tasks = self.tasks
            resources = self._resources  # None unless a task declares some
            while gate and self.running < self._limit and not self.stopped:
                i = gate.pop()
                if resources is not None and not resources.take(i):
                    continue  # parked (see Resources.take): try the next one in priority
                self.running += 1
                context = base.copy()
                attempt = spawn(self._attempt(i, context), context=context)
                if not attempt.done():  # else it ran to its end already, eagerly
                    tasks[i] = attempt
        finally:
            self._launching = False

    def retry_later(self, i: int, delay_s: float) -> None:
        """Make task ``i`` ready again after ``delay_s``; it holds no slot meanwhile."""
        self.timers[i] = self._loop.call_later(delay_s, self._retry, i)

    def stop(self) -> list[asyncio.Task[None]]:
        """Start nothing more, drop pending retries; returns the attempts in flight."""
        self.stopped = True
        self._deadlines.close()
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        self._gate.clear()
        if self._resources is not None:
            self._resources.clear()
        return list(self.tasks.values())

    def _retry(self, i: int) -> None:
        del self.timers[i]
        self._gate.push(i)
        self.launch()

    async def _attempt(self, i: int, context: contextvars.Context) -> None:
        """Run one attempt of task ``i`` and hand its outcome on.

        An attempt the run gave up on (cancelled, or overdue: see ``_overdue``) is no
        longer ``self.tasks[i]``; it was recorded then, and only a setup that completed
        late needs undoing here.
        """
        me: asyncio.Task[None] | None = self.tasks.get(i)
        if me is None:  # started eagerly: ``launch`` has not stored it yet
            me = self.tasks[i] = _current_task(self._loop)  # type: ignore[assignment]
            assert me is not None  # this coroutine runs in a task
        if self.stopped:  # created before the run stopped, not started: it never will
            self._release(i)
            self._cancelled(i)
            return
        spec = self._specs[i]
        attempt = self.counts[i] = self.counts[i] + 1
        self._ledger.started(i, attempt, self._gate.ready_at[i], time.time())
        timeout = self._timeouts[i]
        kind = spec.kind
        on_start = None
        if kind is _ASYNC or kind is _ASYNC_GENERATOR:  # TaskKind.is_async, inlined
            if timeout is not None:
                self._deadlines.watch(i, me, timeout)
            bound = None  # the deadlines bound it: see _deadlines
        else:
            on_start = functools.partial(self._started, i, me)
            bound = timeout
        args = _arguments(spec, self._parents[i], self._specs, self._results, self._context)
        try:
            if kind is _ASYNC:
                # TaskExecutor.run's first case, inlined: a coroutine and a frame less for
                # the commonest attempt, which the deadlines bound (timeout None there).
                try:
                    outcome = _success(await spec.fn(**args))
                except asyncio.CancelledError as exc:
                    if me.cancelling():
                        raise
                    outcome = AttemptOutcome(_FAILED, error=exc)  # the task's own code
                except BaseException as exc:  # as TaskExecutor.run: the attempt failed
                    outcome = AttemptOutcome(_FAILED, error=exc)
            else:
                outcome = await self._executor.run(spec, args, bound, on_start)
        except asyncio.CancelledError:
            ran_out = self._deadlines.settle(me) if self._deadlines.expired else None
            if ran_out is None:
                if self.tasks.get(i) is me:
                    self._release(i)
                    self._cancelled(i)
                    self.launch()
                raise
            me.uncancel()  # the cancellation was its deadline's: it timed out
            outcome = _overran(spec, ran_out)
        else:
            ran_out = self._deadlines.settle(me) if self._deadlines.expired else None
            if ran_out is not None:
                # It swallowed its deadline's cancellation and ended later: still late.
                outcome = _overran(spec, ran_out, outcome.handle)
        handle = outcome.handle
        if self.tasks.get(i) is not me:
            if handle is not None:  # a setup that finished after all: undo it now
                self._teardown.undo_now(i, handle, context)
            return
        self._release(i)
        if outcome.status is _SUCCESS:
            if handle is not None:
                self._teardown.keep(i, handle, context if kind is _ASYNC_GENERATOR else None)
            self._succeeded(i, outcome.value)
        else:
            self._failed(i, outcome)
            if handle is not None and outcome.status is _CANCELLED:
                self._teardown.keep(i, handle, None)  # a sync setup the cancel waited for
            elif handle is not None:  # set up, but too late: undo it now
                self._teardown.undo_now(i, handle, context)
        self.launch()

    def _is_current(self, i: int, attempt: asyncio.Task[Any]) -> bool:
        return self.tasks.get(i) is attempt

    def _release(self, i: int) -> None:
        """Task ``i``'s attempt is over: free its slot and what it held."""
        del self.tasks[i]
        self.running -= 1
        if self._resources is not None:
            self._resources.give_back(i)

    def _started(self, i: int, attempt: asyncio.Task[None], started_at: float) -> None:
        """A sync first attempt started running late: it waited for a worker of the pool.

        That wait is queueing, not running: ``started_at`` moves to when the code started.
        """
        if self.tasks.get(i) is attempt and self.counts[i] == 1:
            self._ledger.started_late(i, started_at)

    def _overdue(self, i: int, attempt: asyncio.Task[Any], timeout_s: float) -> None:
        """An async attempt ignored its cancellation at its timeout: stop waiting for it.

        Cancelled at ``timeout_s``, it is still running the grace period later (a bare
        ``except:`` around an await, say). Like a sync call that overruns, it is abandoned:
        recorded as timed out (and retried if it may be), its slot freed for other tasks.
        """
        if self.tasks.get(i) is not attempt:
            return
        self._release(i)
        self._grace.abandon(attempt)
        self._failed(i, _overran(self._specs[i], timeout_s))
        self.launch()


def _spawner(loop: asyncio.AbstractEventLoop) -> Callable[..., asyncio.Task[None]]:
    """How attempts are started: an ``asyncio.Task`` made directly, eagerly on Python 3.12+.

    An eagerly started task runs its first step inside its creation, so an attempt that
    never suspends (a no-op, a cached value) ends without a trip through the event loop:
    a third of a short attempt's cost. Made directly, it skips ``create_task``'s Python
    wrapper (3.11), which adds nothing while the loop is running and has no task factory.
    A loop with a task factory, or its own ``create_task``, starts attempts its own way
    (eager or not: ``launch`` is safe either way).
    """
    if loop.get_task_factory() is not None or type(loop).create_task is not _CREATE_TASK:
        return loop.create_task
    if _EAGER:
        return functools.partial(asyncio.Task, loop=loop, eager_start=True)  # type: ignore[call-arg]
    return functools.partial(asyncio.Task, loop=loop)


def _arguments(
    spec: TaskSpec,
    parents: tuple[int, ...],
    specs: tuple[TaskSpec, ...],
    results: list[Any],
    context: RunContext[Any] | None,
) -> Mapping[str, Any]:
    """The keyword arguments of a task: bound values, the context, its parents' results."""
    if not (spec.bound or spec.context_arg or spec.upstream_arg or spec.parent_args):
        return _EMPTY
    kwargs = dict(spec.bound)
    if spec.context_arg is not None:
        kwargs[spec.context_arg] = context
    if spec.upstream_arg is not None or spec.parent_args:
        upstream = {specs[p].name: results[p] for p in parents}
        if spec.upstream_arg is not None:
            kwargs[spec.upstream_arg] = upstream
        for name in spec.parent_args:
            kwargs[name] = upstream[name]
    return kwargs
