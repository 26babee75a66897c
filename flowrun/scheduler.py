"""Concurrency and orchestration: dependency gates, the ``max_parallel`` limit, state updates.

Scheduling is event-driven: a task is ready the moment its last parent succeeds and starts
as soon as a slot is free, never level by level. Among ready tasks the one with the
longest remaining path to a leaf goes first (path lengths weighted by expected durations,
one unit per task when none are known), ties broken by topological order; on a bounded
pool this keeps the critical path moving. A slot is held only while an attempt runs:
a task waiting out its ``retry_delay_s`` gives its slot back.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import heapq
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from flowrun._gc import gc_paused
from flowrun.context import RunContext
from flowrun.dag import Dag, heaviest_paths
from flowrun.errors import (
    FlowrunError,
    InvalidMaxParallelError,
    InvalidOptionError,
    InvalidTimeoutError,
    TaskDefinitionError,
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
    _task_record,
)
from flowrun.task import TaskKind, _is_real

__all__ = ["ActiveRun", "Scheduler", "SchedulerConfig", "TaskFailedError"]

#: How long async task code that ignores its cancellation is waited for before it is
#: abandoned: after the run is cancelled, or after an attempt's or a teardown's timeout.
CANCEL_GRACE_S = 2.0

_PENDING = TaskStatus.PENDING
_RUNNING = TaskStatus.RUNNING
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


class TaskFailedError(FlowrunError):
    """Raised by ``ActiveRun.result`` for a task that did not succeed.

    ``task`` is the task asked for, ``status`` its final status, ``cause`` the task that
    actually failed (itself, or the ancestor that made it SKIPPED) and ``error`` its error.
    """

    def __init__(self, task: str, status: TaskStatus, cause: str, error: TaskError | None) -> None:
        self.task = task
        self.status = status
        self.cause = cause
        self.error = error
        what = {
            TaskStatus.FAILED: "failed",
            TaskStatus.TIMED_OUT: "timed out",
            TaskStatus.CANCELLED: "was cancelled",
        }
        if cause != task:
            message = f"task {task!r} was skipped because task {cause!r} did not succeed"
            if error is not None:
                message += f": {error}"
        else:
            message = f"task {task!r} {what.get(status, status.value)}"
            if error is not None:
                message += f": {error}"
        super().__init__(message)


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
        return ActiveRun(self, dag, context, expected_s or {})

    async def run(self, dag: Dag, context: RunContext[Any] | None = None) -> RunRecord:
        """Run ``dag`` to the end, teardown included, and return its final record."""
        active = self.start(dag, context)
        await active.finish()
        return self.state_store.get(active.run_id)


class ActiveRun:
    """A run in progress: await tasks, then tear down; created by ``Scheduler.start``.

    Resources of generator tasks stay alive until ``teardown()``, so a caller (the pytest
    plugin, an ``Engine.session``) can keep them for as long as it needs them.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        dag: Dag,
        context: RunContext[Any] | None,
        expected_s: Mapping[str, float],
    ) -> None:
        config = scheduler.config
        executor = TaskExecutor(scheduler.executor)
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
            if (
                executor.runs_in_processes
                and spec.kind is not TaskKind.SYNC
                and not spec.kind.is_async
            ):
                raise TaskDefinitionError(
                    spec.name,
                    f"task {spec.name!r} is a sync generator, which cannot run in a process pool; "
                    "use a thread pool or make it a plain function",
                )
        self._loop = asyncio.get_running_loop()
        self.dag = dag
        self.run_id = uuid.uuid4().hex
        self.context = context
        self._store = scheduler.state_store
        self._executor = executor
        self._limit = config.max_parallel
        self._default_timeout = config.default_timeout_s
        self._base_context = contextvars.copy_context()
        n = len(dag.specs)
        self._specs = dag.specs
        self._parents = dag.parents
        self._children = dag.children
        with gc_paused():  # every object made here lives as long as the run
            self._records: list[TaskRunRecord] = [
                _task_record(spec.name, _PENDING, spec.deps) for spec in dag.specs
            ]
            self._results: list[Any] = [None] * n
            self._attempts = [0] * n
            self._ready_at: list[float | None] = [None] * n
            self._waiting = [len(p) for p in dag.parents]
            self._priority = self._priorities(expected_s)
            self._ready: list[tuple[float, int]] = []
            self._running = 0
            self._tasks: dict[int, asyncio.Task[None]] = {}
            self._timers: dict[int, asyncio.TimerHandle] = {}
            self._handles: dict[int, Any] = {}
            self._handle_contexts: dict[int, contextvars.Context] = {}
            self._waiters: dict[int, list[asyncio.Future[None]]] = {}
            self._remaining = n
            self._failed = False
            self._cancelled = False
            self._torn_down = False
            self._late_teardowns: set[asyncio.Task[Any]] = set()
            self._skip_teardown = False
            self._store_error: Exception | None = None
            self._done: asyncio.Future[None] = self._loop.create_future()
            self.started_at = time.time()
            self._store.create(
                RunRecord(
                    run_id=self.run_id,
                    dag_name=dag.name,
                    status=RunStatus.RUNNING,
                    started_at=self.started_at,
                    tasks={r.name: r for r in self._records},
                )
            )
            now = self.started_at
            for i in range(n):
                if not self._waiting[i]:
                    self._ready_at[i] = now
                    self._ready.append((self._priority[i], i))
        heapq.heapify(self._ready)
        if n == 0:
            self._done.set_result(None)
        self._launch()

    # -- public API ---------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True once every task is in a terminal state."""
        return self._done.done()

    @property
    def cancelled(self) -> bool:
        """True if the run was cancelled."""
        return self._cancelled

    def record(self, name: str) -> TaskRunRecord:
        """The current record of task ``name``."""
        return self._records[self._index(name)]

    async def wait(self) -> None:
        """Wait until every task is in a terminal state."""
        await asyncio.shield(self._done)

    async def result(self, name: str) -> Any:
        """Wait for task ``name``; return its result or raise ``TaskFailedError``."""
        i = self._index(name)
        if not self._records[i].status.is_terminal:
            future: asyncio.Future[None] = self._loop.create_future()
            self._waiters.setdefault(i, []).append(future)
            await future
        record = self._records[i]
        if record.status is _SUCCESS:
            return self._results[i]
        cause = record.skipped_because or name
        error = record.error if cause == name else self.record(cause).error
        raise TaskFailedError(name, record.status, cause, error)

    async def cancel(self) -> None:
        """Cancel the run: running tasks are cancelled, tasks not started become CANCELLED.

        Waits up to ``CANCEL_GRACE_S`` for task code that ignores cancellation; a sync task
        blocked in a thread is abandoned at once. On a run whose tasks have all ended but
        which is not torn down yet, it only marks the run CANCELLED.
        """
        if self._done.done():
            if not self._torn_down:
                # The cancellation still counts: the run is reported CANCELLED, and another
                # interrupt during the teardown to come is a second one.
                self._cancelled = True
            return
        self._cancelled = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._ready.clear()
        running = list(self._tasks.values())
        for t in running:
            t.cancel()
        try:
            if running:
                await asyncio.wait(running, timeout=CANCEL_GRACE_S)
        except BaseException:
            # Interrupted again while waiting: the caller wants out, so teardown() records
            # the set-up tasks as not torn down (CANCELLED) instead of running them.
            self._skip_teardown = True
            raise
        finally:
            now = time.time()
            for i, record in enumerate(self._records):
                if not record.status.is_terminal:
                    self._terminal(i, TaskStatus.CANCELLED, now, None)
            self._tasks.clear()

    async def finish(self, *, cancel: bool = False) -> None:
        """End the run: wait for every task (or with ``cancel``, cancel it), then tear down.

        The one way a run ends: ``run_once``, ``Engine.session`` and the pytest plugin
        all call it. One cancellation, wherever it lands (while tasks run or during
        teardown), still tears down every set-up task, each bounded by its timeout, before
        it propagates. A second one is not swallowed: teardown stops, what is left is
        recorded as CANCELLED, the run is finalized and the cancellation propagates.
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

    async def _cancel_then_teardown(self) -> None:
        try:
            await self.cancel()
        finally:
            await self.teardown()  # finalizes the run even after a second interrupt

    async def teardown(self) -> None:
        """Resume every set-up generator task after its ``yield``, then finalize the run.

        A task is torn down only after every task depending on it; independent ones
        run concurrently under ``max_parallel``, each bounded by its timeout. Every one is
        attempted even if another fails. Call it once every task is terminal. Raises the
        first error the state store raised while the run went on, if any.
        """
        if self._torn_down:
            return
        if not self._done.done():
            raise RuntimeError("teardown() needs a finished run: await wait() or cancel() first")
        self._torn_down = True
        try:
            if self._skip_teardown:
                for i in list(self._handles):
                    self._torn(i, TaskStatus.CANCELLED, 0.0, None)
            elif self._handles:
                await self._teardown_all()
        finally:
            self._executor.close()
            if self._cancelled:
                status = RunStatus.CANCELLED
            elif self._failed:
                status = RunStatus.FAILED
            else:
                status = RunStatus.SUCCESS
            self._store.finalize(self.run_id, status, time.time())
        if self._store_error is not None and not self._cancelled:
            raise self._store_error

    def _mark(self, record: TaskRunRecord) -> None:
        """Record a task's new state in the store; a store failure must not stall the run.

        The run's own bookkeeping is in memory, so it goes on to the end; the first store
        error is raised once the run is torn down (unless a cancellation is on its way).
        """
        try:
            self._store.mark(self.run_id, record)
        except Exception as exc:
            if self._store_error is None:
                self._store_error = exc

    # -- scheduling ---------------------------------------------------------------------

    def _priorities(self, expected_s: Mapping[str, float]) -> list[float]:
        """Each task's heap key: minus the heaviest path from it to a leaf."""
        specs = self._specs
        known = [v for v in expected_s.values() if v >= 0]
        unknown = sum(known) / len(known) if known else 1.0
        weights = [expected_s.get(spec.name, unknown) for spec in specs]
        best, _ = heaviest_paths(range(len(specs) - 1, -1, -1), self._children, weights)
        return [-b for b in best]

    def _launch(self) -> None:
        ready = self._ready
        if not ready or self._cancelled:
            return
        base = self._base_context
        loop = self._loop
        tasks = self._tasks
        while ready and self._running < self._limit:
            i = heapq.heappop(ready)[1]
            self._running += 1
            context = base.copy()
            tasks[i] = loop.create_task(self._attempt(i, context), context=context)

    async def _attempt(self, i: int, context: contextvars.Context) -> None:
        spec = self._specs[i]
        attempt = self._attempts[i] = self._attempts[i] + 1
        now = time.time()
        record = self._records[i]
        started = record.started_at if record.started_at is not None else now
        record = _task_record(spec.name, _RUNNING, spec.deps, attempt, self._ready_at[i], started)
        self._records[i] = record
        self._mark(record)
        timeout = spec.timeout_s if spec.timeout_s is not None else self._default_timeout
        me = self._tasks[i]
        kind = spec.kind
        is_async = kind is _ASYNC or kind is _ASYNC_GENERATOR  # TaskKind.is_async, inlined
        watchdog = None
        if timeout is not None and is_async:
            watchdog = self._loop.call_later(
                timeout + CANCEL_GRACE_S, self._overdue, i, me, timeout
            )
        on_start = None
        if not is_async:
            on_start = functools.partial(self._started, i, me)
        try:
            outcome = await self._executor.run(spec, self._arguments(i), timeout, on_start)
        except asyncio.CancelledError:
            if watchdog is not None:
                watchdog.cancel()
            if self._tasks.get(i) is not me:
                raise  # abandoned (see _overdue and cancel): already recorded
            self._running -= 1
            del self._tasks[i]
            if not self._records[i].status.is_terminal:
                self._terminal(i, TaskStatus.CANCELLED, time.time(), None)
            self._launch()
            raise
        if watchdog is not None:
            watchdog.cancel()
        if self._tasks.get(i) is not me:
            if outcome.handle is not None:  # a setup that finished after all: undo it now
                self._tear_down_late(i, outcome.handle, timeout, context)
            return  # abandoned (see _overdue and cancel): already recorded
        self._running -= 1
        del self._tasks[i]
        if outcome.status is _SUCCESS:
            self._succeeded(i, outcome)
        else:
            self._attempt_failed(i, outcome)
            if outcome.handle is not None:  # set up, but too late: undo it now
                self._tear_down_late(i, outcome.handle, timeout, context)
        self._launch()
        if outcome.handle is not None and spec.kind is TaskKind.ASYNC_GENERATOR:
            self._handle_contexts[i] = context

    def _started(self, i: int, attempt: asyncio.Task[None], started_at: float) -> None:
        """A sync first attempt started running late: it waited for a worker of the pool.

        That wait is queueing, not running: ``started_at`` moves to when the code started.
        """
        record = self._records[i]
        if self._tasks.get(i) is not attempt or record.attempts != 1:
            return
        record = _task_record(record.name, _RUNNING, record.deps, 1, record.ready_at, started_at)
        self._records[i] = record
        self._mark(record)

    def _tear_down_late(
        self, i: int, handle: Any, timeout_s: float | None, context: contextvars.Context
    ) -> None:
        """Tear down a generator whose setup ended after the run had given up on it.

        Only async code gets here, by ignoring its cancellation past the grace period (a
        sync setup abandoned in its thread tears itself down). Its record is already
        final, so the teardown's outcome is not recorded; what matters is that it runs.
        """
        late = self._loop.create_task(
            self._executor.teardown(self._specs[i], handle, timeout_s), context=context
        )
        self._late_teardowns.add(late)
        late.add_done_callback(self._late_teardowns.discard)

    def _overdue(self, i: int, attempt: asyncio.Task[None], timeout_s: float) -> None:
        """An async attempt ignored its cancellation at its timeout: stop waiting for it.

        Cancelled at ``timeout_s``, it is still running ``CANCEL_GRACE_S`` later (a bare
        ``except:`` around an await, say). Like a sync call that overruns, it is abandoned:
        recorded as timed out (and retried if it may be), its slot freed for other tasks.
        """
        if self._tasks.get(i) is not attempt:
            return
        del self._tasks[i]
        self._running -= 1
        error = TaskTimeoutError(self._specs[i].name, timeout_s)
        self._attempt_failed(i, AttemptOutcome(TaskStatus.TIMED_OUT, error=error))
        self._launch()

    def _arguments(self, i: int) -> Mapping[str, Any]:
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

    def _succeeded(self, i: int, outcome: AttemptOutcome) -> None:
        now = time.time()
        previous = self._records[i]
        value = outcome.value
        self._results[i] = value
        if outcome.handle is not None:
            self._handles[i] = outcome.handle
        record = _task_record(
            previous.name,
            _SUCCESS,
            previous.deps,
            previous.attempts,
            previous.ready_at,
            previous.started_at,
            now,
            value,
        )
        self._records[i] = record
        self._mark(record)
        waiting, ready, ready_at, priority = (
            self._waiting,
            self._ready,
            self._ready_at,
            self._priority,
        )
        for c in self._children[i]:
            left = waiting[c] - 1
            waiting[c] = left
            if not left:
                ready_at[c] = now
                heapq.heappush(ready, (priority[c], c))
        self._settled(i)

    def _attempt_failed(self, i: int, outcome: AttemptOutcome) -> None:
        spec = self._specs[i]
        error = outcome.error
        task_error = TaskError.from_exception(error) if error is not None else None
        if self._attempts[i] <= spec.retries and not self._cancelled:
            previous = self._records[i]
            self._records[i] = record = _task_record(
                previous.name,
                _PENDING,
                previous.deps,
                previous.attempts,
                previous.ready_at,
                previous.started_at,
                error=task_error,
            )
            self._mark(record)
            if spec.retry_delay_s > 0:
                self._timers[i] = self._loop.call_later(spec.retry_delay_s, self._retry, i)
            else:
                heapq.heappush(self._ready, (self._priority[i], i))
            return
        self._terminal(i, outcome.status, time.time(), task_error)

    def _retry(self, i: int) -> None:
        del self._timers[i]
        heapq.heappush(self._ready, (self._priority[i], i))
        self._launch()

    def _terminal(self, i: int, status: TaskStatus, now: float, error: TaskError | None) -> None:
        """Record a failed, timed-out or cancelled task; its descendants become SKIPPED."""
        previous = self._records[i]
        record = _task_record(
            previous.name,
            status,
            previous.deps,
            previous.attempts,
            previous.ready_at,
            previous.started_at,
            now if previous.started_at is not None else None,
            None,
            error,
        )
        self._records[i] = record
        self._mark(record)
        if status is not TaskStatus.CANCELLED:
            self._failed = True
        self._settled(i)
        if self._cancelled:
            return  # a cancelled run marks everything left CANCELLED, not SKIPPED
        records, children, name = self._records, self._children, previous.name
        stack = list(children[i])
        while stack:
            c = stack.pop()
            if records[c].status is not _PENDING:
                continue
            skipped = _task_record(
                records[c].name, TaskStatus.SKIPPED, records[c].deps, skipped_because=name
            )
            records[c] = skipped
            self._mark(skipped)
            self._settled(c)
            stack.extend(children[c])

    def _settled(self, i: int) -> None:
        if self._waiters:
            for future in self._waiters.pop(i, ()):
                if not future.done():
                    future.set_result(None)
        self._remaining -= 1
        if not self._remaining:
            self._done.set_result(None)

    def _index(self, name: str) -> int:
        try:
            return self.dag.index[name]
        except KeyError:
            raise UnknownTaskError(name, list(self.dag.index)) from None

    # -- teardown -----------------------------------------------------------------------

    async def _teardown_all(self) -> None:
        n = len(self._specs)
        blocking = [len(c) for c in self._children]
        ready = [i for i in range(n) if not blocking[i]]
        running: dict[asyncio.Task[None], int] = {}
        interrupted: asyncio.CancelledError | None = None
        try:
            while ready or running:
                while ready and len(running) < self._limit:
                    i = ready.pop()
                    if i in self._handles:
                        # The very Context of the setup, not a copy: a context variable set
                        # before ``yield`` must be readable and resettable after it.
                        context = self._handle_contexts.get(i)
                        if context is None:
                            context = self._base_context.copy()
                        teardown = self._teardown_one(i, context)
                        running[self._loop.create_task(teardown, context=context)] = i
                        continue
                    for p in self._parents[i]:  # nothing to undo here: unblock the parents
                        blocking[p] -= 1
                        if not blocking[p]:
                            ready.append(p)
                if not running:
                    continue
                try:
                    finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                except asyncio.CancelledError as exc:
                    if interrupted is not None or self._cancelled:
                        raise  # a second interrupt: stop tearing down
                    # The first interrupt of a run that had ended: every set-up task is
                    # still torn down (each bounded by its timeout), then it propagates.
                    interrupted = exc
                    self._cancelled = True
                    continue
                for t in finished:
                    i = running.pop(t)
                    for p in self._parents[i]:
                        blocking[p] -= 1
                        if not blocking[p]:
                            ready.append(p)
        except BaseException:
            self._cancelled = True
            for t in running:
                t.cancel()
            try:
                if running:
                    await asyncio.wait(running, timeout=CANCEL_GRACE_S)
            finally:
                for i in list(self._handles):
                    self._torn(i, TaskStatus.CANCELLED, 0.0, None)
            raise
        if interrupted is not None:
            raise interrupted

    async def _teardown_one(self, i: int, context: contextvars.Context) -> None:
        spec = self._specs[i]
        handle = self._handles[i]
        timeout = spec.timeout_s if spec.timeout_s is not None else self._default_timeout
        started = time.perf_counter()
        work = self._executor.teardown(spec, handle, timeout)
        inner = None  # a sync teardown overrunning its timeout is abandoned by the executor
        if timeout is not None and spec.kind is TaskKind.ASYNC_GENERATOR:
            # Async code can swallow its timeout's cancellation: wait for it in a task of
            # its own (in the same Context), and give up on it CANCEL_GRACE_S later.
            inner = self._loop.create_task(work, context=context)
        try:
            if inner is None or timeout is None:
                outcome = await work
            else:
                await asyncio.wait((inner,), timeout=timeout + CANCEL_GRACE_S)
                if inner.done():
                    outcome = inner.result()
                else:
                    self._late_teardowns.add(inner)  # abandoned: keep it referenced
                    inner.add_done_callback(self._late_teardowns.discard)
                    overdue = TaskTimeoutError(spec.name, timeout, phase="teardown")
                    outcome = AttemptOutcome(TaskStatus.TIMED_OUT, error=overdue)
        except asyncio.CancelledError:
            if inner is not None:
                inner.cancel()
            self._torn(i, TaskStatus.CANCELLED, time.perf_counter() - started, None)
            raise
        error = TaskError.from_exception(outcome.error) if outcome.error is not None else None
        self._torn(i, outcome.status, time.perf_counter() - started, error)

    def _torn(self, i: int, status: TaskStatus, seconds: float, error: TaskError | None) -> None:
        if self._handles.pop(i, None) is None:
            return
        self._handle_contexts.pop(i, None)
        if status is not _SUCCESS:
            self._failed = True
        previous = self._records[i]
        record = _task_record(
            previous.name,
            previous.status,
            previous.deps,
            previous.attempts,
            previous.ready_at,
            previous.started_at,
            previous.finished_at,
            previous.result,
            previous.error,
            previous.skipped_because,
            status,
            seconds,
            error,
        )
        self._records[i] = record
        self._mark(record)
