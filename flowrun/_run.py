"""The run driver: ``ActiveRun``, one run of a DAG from its start to its final record.

It wires six parts, each with one job: the ``Gate`` (which task starts next), the
``Attempts`` (the attempts in flight, under the limit), the ``Resources`` (per-resource
caps, only in a run whose tasks declare some), the ``Ledger`` (the task records), the
``Teardown`` (the set-up generator tasks) and the ``Grace`` (stopping async code that
ignores its cancellation), and decides what each outcome means for the run.
It imports them, the executor, the DAG and the state types; ``flowrun.scheduler``
creates it and re-exports it.
"""

from __future__ import annotations

import asyncio
import enum
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowrun._attempts import Attempts
from flowrun._gate import Gate
from flowrun._gc import gc_paused
from flowrun._grace import Grace
from flowrun._ledger import Ledger
from flowrun._resources import Resources
from flowrun._teardown import Teardown
from flowrun.context import RunContext
from flowrun.dag import Dag, _heaviest_paths
from flowrun.errors import TaskFailedError, UnknownTaskError
from flowrun.executor import AttemptOutcome, TaskExecutor
from flowrun.state import RunStatus, StateStoreProtocol, TaskError, TaskRunRecord, TaskStatus

if TYPE_CHECKING:
    from flowrun.scheduler import SchedulerConfig

__all__ = ["ActiveRun"]

_SUCCESS = TaskStatus.SUCCESS
_CANCELLED = TaskStatus.CANCELLED
_SKIPPED = TaskStatus.SKIPPED


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
    See the module docstring for the parts it drives.
    """

    def __init__(
        self,
        config: SchedulerConfig,
        store: StateStoreProtocol,
        dag: Dag,
        context: RunContext[Any] | None,
        expected_s: Mapping[str, float],
        executor: TaskExecutor,
        grace_s: float,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self.dag = dag
        self.run_id = uuid.uuid4().hex
        self.context = context
        self._executor = executor
        self._skip_on = config.skip_exceptions
        self._interrupt_on = config.interrupt_exceptions
        self._grace = grace = Grace(grace_s)
        specs = self._specs = dag.specs
        n = len(specs)
        with gc_paused():  # every object made here lives as long as the run
            timeouts = [
                config.default_timeout_s if s.timeout_s is None else s.timeout_s for s in specs
            ]
            self.started_at = now = time.time()
            caps = config.resources
            held = {s.name: s.resources for s in specs if s.resources}  # most runs: none
            ledger = self._ledger = Ledger(store, self.run_id, dag, now, executor.name, caps, held)
            keys = _priorities(dag, expected_s)
            gate = self._gate = Gate(dag.parents, dag.children, keys, now)
            limit = config.max_parallel
            self._teardown = Teardown(dag, timeouts, executor, ledger, grace, limit, caps)
            self._results: list[Any] = [None] * n
            resources = Resources.of(specs, caps, gate, keys) if held else None
            self._attempts = Attempts(
                dag,
                timeouts,
                limit,
                context,
                self._results,
                (gate, ledger, self._teardown, grace, executor, resources),
                self._succeeded,
                self._attempt_failed,
                self._attempt_cancelled,
            )
            self._waiters: dict[int, list[asyncio.Future[None]]] = {}
            self._remaining = n
        self._phase = _Phase.RUNNING
        self._failed = False
        self._cancelled = False
        self._interrupt: BaseException | None = None
        self._errors: dict[int, BaseException] = {}  # what failed or skipped tasks raised
        self._stopping: asyncio.Task[None] | None = None  # the cancel an interrupt started
        self._done: asyncio.Future[None] = self._loop.create_future()
        if n == 0:
            self._settle()
        self._attempts.launch()

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
        c = self._index(cause)
        error = records[c].error
        # The exception itself, for a caller that must tell them apart (pytest's outcomes).
        raise TaskFailedError(name, record.status, cause, error) from self._errors.get(c)

    @property
    def interrupt(self) -> BaseException | None:
        """The exception of ``interrupt_exceptions`` that stopped the run, if one did."""
        return self._interrupt

    def halt(self) -> None:
        """Start no new attempt from now on; the one method safe to call from any thread.

        For a caller that learns of an interrupt on another thread (the pytest plugin on
        Ctrl-C): nothing starts between the interrupt and the ``finish(cancel=True)`` that
        must follow on the loop.
        """
        self._attempts.stopped = True  # one attribute write: atomic, read on the loop

    async def cancel(self) -> None:
        """Cancel the run: running tasks are cancelled, tasks not started become CANCELLED.

        Waits up to ``CANCEL_GRACE_S`` for task code that ignores cancellation, and for a
        sync generator's setup running in a thread (set up, it is torn down in order with
        the others); a plain sync call blocked in a thread is abandoned at once. On a run
        whose tasks have all ended but which is not torn down yet, it only marks the run
        CANCELLED; on a run being cancelled already, it waits for that. If this wait is
        itself cancelled (a second interrupt), the set-up tasks will not be torn down:
        they are recorded so (CANCELLED) and the cancellation propagates.
        """
        if self._phase is not _Phase.RUNNING:
            if self._phase is _Phase.SETTLED:
                # The cancellation still counts: the run is reported CANCELLED, and another
                # interrupt during the teardown to come is a second one.
                self._cancelled = True
            return
        if self._cancelled:  # a cancellation is on its way (an interrupt_exceptions one)
            try:
                await self.wait()
            except BaseException:
                self._teardown.skip_all()
                self._cancel_rest()
                raise
            return
        self._cancelled = True
        try:
            await self._grace.cancel(self._attempts.stop())
        except BaseException:
            self._teardown.skip_all()  # interrupted again: the caller wants out
            raise
        finally:
            self._cancel_rest()

    def _cancel_rest(self) -> None:
        """Record every task not final yet as CANCELLED; attempts left are abandoned."""
        now = time.time()
        for i, record in enumerate(self._ledger.records):
            if not record.status.is_terminal:
                self._end(i, TaskStatus.CANCELLED, now, None)
        self._attempts.tasks.clear()

    async def finish(self, *, cancel: bool = False) -> None:
        """End the run: wait for every task (or with ``cancel``, cancel it), then tear down.

        The one way a run ends: ``run_once``, ``Engine.session`` and the pytest plugin
        all call it. One cancellation, wherever it lands (while tasks run or during
        teardown), still tears down every set-up task, each bounded by its timeout, before
        it propagates. A second one is not swallowed: teardown stops, what is left is
        recorded as CANCELLED, the run is finalized and the cancellation propagates.
        Raises the first error the state store raised while the run went on, if any, and
        then the run's ``interrupt``, if it had one.
        """
        if not cancel:
            try:
                await self.wait()
            except BaseException:
                await self._cancel_then_teardown()
                raise
            await self.teardown()
        else:
            await self._cancel_then_teardown()
        if self._interrupt is not None:
            raise self._interrupt

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

    # -- outcomes -----------------------------------------------------------------------

    def _succeeded(self, i: int, value: Any) -> None:
        """Task ``i`` succeeded with ``value``: the tasks waiting only for it are ready."""
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
        if error is not None and (self._skip_on or not isinstance(error, Exception)):
            # A skip or an interrupt ends the task at once, without retries.
            if isinstance(error, self._skip_on):
                self._errors[i] = error
                self._end(i, _SKIPPED, time.time(), task_error)
                return
            if isinstance(error, self._interrupt_on):
                self._errors[i] = error
                if self._interrupt is None:
                    self._interrupt = error
                    self._attempts.stopped = True  # before _end: dependants are CANCELLED
                    self._stopping = self._loop.create_task(self.cancel())
                self._end(i, outcome.status, time.time(), task_error)
                return
        if self._attempts.counts[i] <= spec.retries and not self._attempts.stopped:
            self._ledger.retrying(i, task_error)
            if spec.retry_delay_s > 0:
                self._attempts.retry_later(i, spec.retry_delay_s)
            else:
                self._gate.push(i)
            return
        if error is not None:
            self._errors[i] = error
        self._end(i, outcome.status, time.time(), task_error)

    def _attempt_cancelled(self, i: int) -> None:
        if not self._ledger.records[i].status.is_terminal:
            self._end(i, _CANCELLED, time.time(), None)

    def _end(self, i: int, status: TaskStatus, now: float, error: TaskError | None) -> None:
        """Record a task that ended without a result; its descendants become SKIPPED."""
        self._ledger.ended(i, status, now, error)
        if status is not _CANCELLED and status is not _SKIPPED:
            self._failed = True
        self._settled(i)
        if self._attempts.stopped:
            return  # a stopped run marks everything left CANCELLED, not SKIPPED
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
        self._attempts.stop()  # every task is final: no deadline is left to keep
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
