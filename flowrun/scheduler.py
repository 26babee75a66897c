"""Concurrency and orchestration: the run driver, the ``max_parallel`` limit, state updates.

Scheduling is event-driven: a task is ready the moment its last parent succeeds and starts
as soon as a slot is free, never level by level. Among ready tasks the one with the
longest remaining path to a leaf goes first (path lengths weighted by expected durations,
one unit per task when none are known), ties broken by topological order; on a bounded
pool this keeps the critical path moving. A slot is held only while an attempt runs:
a task waiting out its ``retry_delay_s`` gives its slot back.

``ActiveRun`` drives a run over four private parts, each with one job: ``_gate`` (which
task starts next), ``_ledger`` (the task records), ``_teardown`` (the set-up generator
tasks) and ``_grace`` (stopping async code that ignores its cancellation). This module
imports them, the executor, the DAG and the state store; nothing in flowrun imports it
but the engine.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import functools
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from flowrun._gate import Gate
from flowrun._gc import gc_paused
from flowrun._grace import Grace
from flowrun._ledger import Ledger
from flowrun._teardown import Teardown
from flowrun.context import RunContext
from flowrun.dag import Dag, _heaviest_paths
from flowrun.errors import (
    InvalidMaxParallelError,
    InvalidOptionError,
    InvalidTimeoutError,
    TaskDefinitionError,
    TaskFailedError,
    TaskTimeoutError,
    UnknownTaskError,
)
from flowrun.executor import AttemptOutcome, TaskExecutor
from flowrun.state import (
    RunRecord,
    RunStatus,
    StateStore,
    StateStoreProtocol,
    TaskError,
    TaskRunRecord,
    TaskStatus,
)
from flowrun.task import TaskKind, _is_real

__all__ = ["ActiveRun", "Scheduler", "SchedulerConfig", "TaskFailedError"]

#: How long async task code that ignores its cancellation is waited for before it is
#: abandoned: after the run is cancelled, or after an attempt's or a teardown's timeout.
CANCEL_GRACE_S = 2.0

_SUCCESS = TaskStatus.SUCCESS
_ASYNC = TaskKind.ASYNC
_ASYNC_GENERATOR = TaskKind.ASYNC_GENERATOR
_EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """How runs are scheduled.

    ``max_parallel`` bounds the task bodies running at once (setup and teardown alike);
    ``default_timeout_s`` applies to tasks declared without ``timeout_s``.
    Raises ``InvalidMaxParallelError`` or ``InvalidTimeoutError`` (both
    ``InvalidOptionError``) for out-of-range values.
    """

    max_parallel: int = 16
    default_timeout_s: float | None = None

    def __post_init__(self) -> None:
        mp = self.max_parallel
        if not isinstance(mp, int) or isinstance(mp, bool) or mp < 1:
            raise InvalidMaxParallelError("max_parallel", mp, "a whole number >= 1")
        t = self.default_timeout_s
        if t is not None and (not _is_real(t) or not 0 < t < float("inf")):
            raise InvalidTimeoutError(
                "default_timeout_s", t, "a positive number of seconds, or None"
            )


class Scheduler:
    """Runs validated DAGs under a ``SchedulerConfig``, recording every task in a state store.

    ``executor`` runs sync tasks and stays the caller's; without one, each run uses a
    thread pool of its own that it shuts down when it ends.
    """

    def __init__(
        self,
        config: SchedulerConfig | None = None,
        *,
        state_store: StateStoreProtocol | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.config = config if config is not None else SchedulerConfig()
        self.state_store: StateStoreProtocol = (
            state_store if state_store is not None else StateStore()
        )
        self.executor = executor

    def start(
        self,
        dag: Dag,
        context: RunContext[Any] | None = None,
        *,
        expected_s: Mapping[str, float] | None = None,
    ) -> ActiveRun:
        """Validate the run's inputs and start it on the running loop; returns at once.

        Raises before anything runs if a task needs a context and none was given, or a
        generator task would have to run in a process pool.
        """
        executor = TaskExecutor(self.executor)
        if context is not None and not isinstance(context, RunContext):
            context = RunContext(context)
        for spec in dag.specs:
            if spec.context_arg is not None and context is None:
                raise InvalidOptionError(
                    "context",
                    None,
                    f"a RunContext, because task {spec.name!r} takes one in parameter "
                    f"{spec.context_arg!r}; pass run_once(..., context=RunContext(...))",
                )
            if executor.runs_in_processes and spec.kind is TaskKind.SYNC_GENERATOR:
                raise TaskDefinitionError(
                    spec.name,
                    f"task {spec.name!r} is a sync generator, which cannot run in a process pool; "
                    "use a thread pool or make it a plain function",
                )
        return ActiveRun(self, dag, context, expected_s or {}, executor)

    async def run(self, dag: Dag, context: RunContext[Any] | None = None) -> RunRecord:
        """Run ``dag`` to the end, teardown included, and return its final record."""
        active = self.start(dag, context)
        await active.finish()
        return self.state_store.get(active.run_id)


class _Phase(enum.Enum):
    """Where a run is in its life; it only moves forwards."""

    RUNNING = "running"  # tasks start as slots free up
    SETTLED = "settled"  # every task is final; set-up generator tasks wait for teardown
    TEARING_DOWN = "tearing down"
    FINAL = "final"  # the run is finalized in the store


class ActiveRun:
    """A run in progress: await tasks, then end it with ``finish``; made by ``Scheduler.start``.

    Resources of generator tasks stay alive until the run is torn down, so a caller (the
    pytest plugin, an ``Engine.session``) can keep them for as long as it needs them.
    It drives four parts: the ``Gate`` (which task starts next), the ``Ledger`` (the task
    records), the ``Teardown`` (the set-up generator tasks) and the ``Grace`` (stopping
    async code that ignores its cancellation).
    """

    def __init__(
        self,
        scheduler: Scheduler,
        dag: Dag,
        context: RunContext[Any] | None,
        expected_s: Mapping[str, float],
        executor: TaskExecutor,
    ) -> None:
        config = scheduler.config
        self._loop = asyncio.get_running_loop()
        self.dag = dag
        self.run_id = uuid.uuid4().hex
        self.context = context
        self._executor = executor
        self._limit = config.max_parallel
        self._base_context = contextvars.copy_context()
        self._grace = Grace(CANCEL_GRACE_S)
        specs = self._specs = dag.specs
        self._parents = dag.parents
        n = len(specs)
        with gc_paused():  # every object made here lives as long as the run
            default = config.default_timeout_s
            self._timeouts = [default if s.timeout_s is None else s.timeout_s for s in specs]
            self.started_at = now = time.time()
            self._ledger = Ledger(
                scheduler.state_store,
                self.run_id,
                dag.name,
                [s.name for s in specs],
                [s.deps for s in specs],
                now,
            )
            self._gate = Gate(dag.parents, dag.children, _priorities(dag, expected_s), now)
            self._teardown = Teardown(
                specs,
                dag.parents,
                dag.children,
                self._timeouts,
                executor,
                self._ledger,
                self._grace,
                self._limit,
                self._base_context,
            )
            self._results: list[Any] = [None] * n
            self._attempts = [0] * n
            self._running = 0
            self._tasks: dict[int, asyncio.Task[None]] = {}
            self._timers: dict[int, asyncio.TimerHandle] = {}
            self._waiters: dict[int, list[asyncio.Future[None]]] = {}
            self._remaining = n
        self._phase = _Phase.RUNNING
        self._failed = False
        self._cancelled = False
        self._done: asyncio.Future[None] = self._loop.create_future()
        if n == 0:
            self._settle()
        self._launch()

    # -- public API ---------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True once every task is in a terminal state."""
        return self._phase is not _Phase.RUNNING

    @property
    def cancelled(self) -> bool:
        """True if the run was cancelled."""
        return self._cancelled

    def record(self, name: str) -> TaskRunRecord:
        """The current record of task ``name``."""
        return self._ledger.records[self._index(name)]

    async def wait(self) -> None:
        """Wait until every task is in a terminal state."""
        await asyncio.shield(self._done)

    async def result(self, name: str) -> Any:
        """Wait for task ``name``; return its result or raise ``TaskFailedError``."""
        i = self._index(name)
        records = self._ledger.records
        if not records[i].status.is_terminal:
            future: asyncio.Future[None] = self._loop.create_future()
            self._waiters.setdefault(i, []).append(future)
            await future
        record = records[i]
        if record.status is _SUCCESS:
            return self._results[i]
        cause = record.skipped_because or name
        error = record.error if cause == name else self.record(cause).error
        raise TaskFailedError(name, record.status, cause, error)

    async def cancel(self) -> None:
        """Cancel the run: running tasks are cancelled, tasks not started become CANCELLED.

        Waits up to ``CANCEL_GRACE_S`` for task code that ignores cancellation; a sync task
        blocked in a thread is abandoned at once. On a run whose tasks have all ended but
        which is not torn down yet, it only marks the run CANCELLED. If this wait is
        itself cancelled (a second interrupt), the set-up tasks will not be torn down:
        they are recorded so (CANCELLED) and the cancellation propagates.
        """
        if self._phase is not _Phase.RUNNING:
            if self._phase is _Phase.SETTLED:
                # The cancellation still counts: the run is reported CANCELLED, and another
                # interrupt during the teardown to come is a second one.
                self._cancelled = True
            return
        self._cancelled = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._gate.clear()
        try:
            await self._grace.cancel(list(self._tasks.values()))
        except BaseException:
            self._teardown.skip_all()  # interrupted again: the caller wants out
            raise
        finally:
            now = time.time()
            for i, record in enumerate(self._ledger.records):
                if not record.status.is_terminal:
                    self._end(i, TaskStatus.CANCELLED, now, None)
            self._tasks.clear()

    async def finish(self, *, cancel: bool = False) -> None:
        """End the run: wait for every task (or with ``cancel``, cancel it), then tear down.

        The one way a run ends: ``run_once``, ``Engine.session`` and the pytest plugin
        all call it. One cancellation, wherever it lands (while tasks run or during
        teardown), still tears down every set-up task, each bounded by its timeout, before
        it propagates. A second one is not swallowed: teardown stops, what is left is
        recorded as CANCELLED, the run is finalized and the cancellation propagates.
        Raises the first error the state store raised while the run went on, if any.
        """
        if not cancel:
            try:
                await self.wait()
            except BaseException:
                await self._cancel_then_teardown()
                raise
        else:
            await self._cancel_then_teardown()
            return
        await self.teardown()

    async def teardown(self) -> None:
        """Resume every set-up generator task after its ``yield``, then finalize the run.

        A task is torn down only after every task depending on it; independent ones
        run concurrently under ``max_parallel``, each bounded by its timeout. Every one is
        attempted even if another fails. Call it once every task is terminal. Raises the
        first error the state store raised while the run went on, if any.
        """
        if self._phase is not _Phase.SETTLED:
            if self._phase is _Phase.RUNNING:
                raise RuntimeError(
                    "teardown() needs a finished run: await wait() or cancel() first"
                )
            return
        self._phase = _Phase.TEARING_DOWN
        try:
            if self._teardown:
                await self._teardown.run(interrupted=self._cancelled)
        except BaseException:
            self._cancelled = True
            raise
        finally:
            self._executor.close()
            if self._cancelled:
                status = RunStatus.CANCELLED
            elif self._failed or self._teardown.failed:
                status = RunStatus.FAILED
            else:
                status = RunStatus.SUCCESS
            self._phase = _Phase.FINAL
            self._ledger.finalize(status, time.time())
        error = self._ledger.store_error
        if error is not None and not self._cancelled:
            raise error

    async def _cancel_then_teardown(self) -> None:
        try:
            await self.cancel()
        finally:
            await self.teardown()  # finalizes the run even after a second interrupt

    # -- running tasks ------------------------------------------------------------------

    def _launch(self) -> None:
        """Start ready tasks while slots are free."""
        gate = self._gate
        if not gate or self._cancelled:
            return
        base = self._base_context
        loop = self._loop
        tasks = self._tasks
        while gate and self._running < self._limit:
            i = gate.pop()
            self._running += 1
            context = base.copy()
            tasks[i] = loop.create_task(self._attempt(i, context), context=context)

    async def _attempt(self, i: int, context: contextvars.Context) -> None:
        """Run one attempt of task ``i`` in its own task and Context, and act on its outcome.

        An attempt the run gave up on (cancelled, or overdue: see ``_overdue``) is no
        longer ``self._tasks[i]``; it was recorded then, and only a setup that completed
        late needs undoing here.
        """
        spec = self._specs[i]
        attempt = self._attempts[i] = self._attempts[i] + 1
        self._ledger.started(i, attempt, self._gate.ready_at[i], time.time())
        timeout = self._timeouts[i]
        me = self._tasks[i]
        kind = spec.kind
        is_async = kind is _ASYNC or kind is _ASYNC_GENERATOR  # TaskKind.is_async, inlined
        watchdog = None
        on_start = None
        if is_async:
            if timeout is not None:
                watchdog = self._loop.call_later(
                    timeout + self._grace.grace_s, self._overdue, i, me, timeout
                )
        else:
            on_start = functools.partial(self._started, i, me)
        try:
            outcome = await self._executor.run(spec, self._arguments(i), timeout, on_start)
        except asyncio.CancelledError:
            if watchdog is not None:
                watchdog.cancel()
            if self._tasks.get(i) is me:
                self._release(i)
                if not self._ledger.records[i].status.is_terminal:
                    self._end(i, TaskStatus.CANCELLED, time.time(), None)
                self._launch()
            raise
        if watchdog is not None:
            watchdog.cancel()
        handle = outcome.handle
        if self._tasks.get(i) is not me:
            if handle is not None:  # a setup that finished after all: undo it now
                self._teardown.undo_now(i, handle, context)
            return
        self._release(i)
        if outcome.status is _SUCCESS:
            if handle is not None:
                self._teardown.keep(i, handle, context if kind is _ASYNC_GENERATOR else None)
            self._succeeded(i, outcome.value)
        else:
            self._attempt_failed(i, outcome)
            if handle is not None:  # set up, but too late: undo it now
                self._teardown.undo_now(i, handle, context)
        self._launch()

    def _release(self, i: int) -> None:
        """Task ``i``'s attempt is over: free its slot."""
        del self._tasks[i]
        self._running -= 1

    def _started(self, i: int, attempt: asyncio.Task[None], started_at: float) -> None:
        """A sync first attempt started running late: it waited for a worker of the pool.

        That wait is queueing, not running: ``started_at`` moves to when the code started.
        """
        if self._tasks.get(i) is attempt and self._attempts[i] == 1:
            self._ledger.started_late(i, started_at)

    def _overdue(self, i: int, attempt: asyncio.Task[None], timeout_s: float) -> None:
        """An async attempt ignored its cancellation at its timeout: stop waiting for it.

        Cancelled at ``timeout_s``, it is still running the grace period later (a bare
        ``except:`` around an await, say). Like a sync call that overruns, it is abandoned:
        recorded as timed out (and retried if it may be), its slot freed for other tasks.
        """
        if self._tasks.get(i) is not attempt:
            return
        self._release(i)
        self._grace.abandon(attempt)
        error = TaskTimeoutError(self._specs[i].name, timeout_s)
        self._attempt_failed(i, AttemptOutcome(TaskStatus.TIMED_OUT, error=error))
        self._launch()

    def _arguments(self, i: int) -> Mapping[str, Any]:
        """The keyword arguments of task ``i``: bound values, context, parents' results."""
        spec = self._specs[i]
        if not (spec.bound or spec.context_arg or spec.upstream_arg or spec.parent_args):
            return _EMPTY
        kwargs = dict(spec.bound)
        if spec.context_arg is not None:
            kwargs[spec.context_arg] = self.context
        if spec.upstream_arg is not None or spec.parent_args:
            specs, results = self._specs, self._results
            upstream = {specs[p].name: results[p] for p in self._parents[i]}
            if spec.upstream_arg is not None:
                kwargs[spec.upstream_arg] = upstream
            for name in spec.parent_args:
                kwargs[name] = upstream[name]
        return kwargs

    # -- outcomes -----------------------------------------------------------------------

    def _succeeded(self, i: int, value: Any) -> None:
        now = time.time()
        self._results[i] = value
        self._ledger.succeeded(i, now, value)
        self._gate.done(i, now)
        self._settled(i)

    def _attempt_failed(self, i: int, outcome: AttemptOutcome) -> None:
        """Retry task ``i`` if it may be retried, else record how it ended."""
        spec = self._specs[i]
        error = outcome.error
        task_error = TaskError.from_exception(error) if error is not None else None
        if self._attempts[i] <= spec.retries and not self._cancelled:
            self._ledger.retrying(i, task_error)
            if spec.retry_delay_s > 0:  # its slot is free while it waits
                self._timers[i] = self._loop.call_later(spec.retry_delay_s, self._retry, i)
            else:
                self._gate.push(i)
            return
        self._end(i, outcome.status, time.time(), task_error)

    def _retry(self, i: int) -> None:
        del self._timers[i]
        self._gate.push(i)
        self._launch()

    def _end(self, i: int, status: TaskStatus, now: float, error: TaskError | None) -> None:
        """Record a failed, timed-out or cancelled task; its descendants become SKIPPED."""
        self._ledger.ended(i, status, now, error)
        if status is not TaskStatus.CANCELLED:
            self._failed = True
        self._settled(i)
        if self._cancelled:
            return  # a cancelled run marks everything left CANCELLED, not SKIPPED
        name = self._specs[i].name
        for c in self._gate.fail(i):
            self._ledger.skipped(c, name)
            self._settled(c)

    def _settled(self, i: int) -> None:
        """Task ``i`` is final: wake whoever waits for it, and the run once all are."""
        if self._waiters:
            for future in self._waiters.pop(i, ()):
                if not future.done():
                    future.set_result(None)
        self._remaining -= 1
        if not self._remaining:
            self._settle()

    def _settle(self) -> None:
        self._phase = _Phase.SETTLED
        self._done.set_result(None)

    def _index(self, name: str) -> int:
        try:
            return self.dag.index[name]
        except KeyError:
            raise UnknownTaskError(name, list(self.dag.index)) from None


def _priorities(dag: Dag, expected_s: Mapping[str, float]) -> list[float]:
    """Each task's key in the gate: minus the heaviest path from it to a leaf.

    Path lengths are weighted by ``expected_s``; a task without one weighs the mean of
    those known, or 1 when none is.
    """
    known = [v for v in expected_s.values() if v >= 0]
    unknown = sum(known) / len(known) if known else 1.0
    weights = [expected_s.get(spec.name, unknown) for spec in dag.specs]
    best, _ = _heaviest_paths(range(len(weights) - 1, -1, -1), dag.children, weights)
    return [-b for b in best]
