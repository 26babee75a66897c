"""The teardown of a run: the set-up generator tasks, and undoing them in reverse order.

A generator task's suspended generator (its handle) is kept with the Context its setup
ran in, so that a context variable set before ``yield`` can be read and reset after it.
At the end of the run every handle is resumed, a task only after every task depending on
it (the run's ``Gate`` turned around), independent ones concurrently under the run's
limit, each bounded by its timeout and holding its task's resources while it runs,
against the caps on its own (the attempts are over by then). Imports the gate, the
resources, the ledger, the grace helper and the executor.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Mapping, Sequence
from typing import Any

from flowrun._gate import Gate
from flowrun._grace import Grace
from flowrun._ledger import Ledger
from flowrun._resources import Resources
from flowrun.dag import Dag
from flowrun.errors import TaskTimeoutError
from flowrun.executor import AttemptOutcome, TaskExecutor
from flowrun.state import TaskError, TaskStatus
from flowrun.task import TaskKind

__all__ = ["Teardown"]

_SUCCESS = TaskStatus.SUCCESS
_CANCELLED = TaskStatus.CANCELLED


class Teardown:
    """The handles of a run's set-up generator tasks and their teardown.

    ``timeouts[i]`` bounds task ``i``'s teardown as it bounded its attempts. ``failed``
    turns true when a teardown does not succeed.
    """

    __slots__ = (
        "_base_context",
        "_caps",
        "_children",
        "_contexts",
        "_executor",
        "_grace",
        "_handles",
        "_ledger",
        "_limit",
        "_parents",
        "_specs",
        "_timeouts",
        "failed",
    )

    def __init__(
        self,
        dag: Dag,
        timeouts: Sequence[float | None],
        executor: TaskExecutor,
        ledger: Ledger,
        grace: Grace,
        limit: int,
        caps: Mapping[str, int],
    ) -> None:
        self._specs = dag.specs
        self._parents = dag.parents
        self._children = dag.children
        self._timeouts = timeouts
        self._executor = executor
        self._ledger = ledger
        self._grace = grace
        self._limit = limit
        self._caps = caps
        self._base_context = contextvars.copy_context()
        self._handles: dict[int, Any] = {}
        self._contexts: dict[int, contextvars.Context] = {}
        self.failed = False

    def __bool__(self) -> bool:
        """True while a set-up task is waiting for its teardown."""
        return bool(self._handles)

    def keep(self, i: int, handle: Any, context: contextvars.Context | None) -> None:
        """Task ``i`` is set up: keep its ``handle`` (and the Context of an async setup)."""
        self._handles[i] = handle
        if context is not None:
            self._contexts[i] = context

    def undo_now(self, i: int, handle: Any, context: contextvars.Context) -> None:
        """Tear down a generator whose setup ended after the run had given up on it.

        Only async code gets here, by ignoring its cancellation past the grace period (a
        sync setup abandoned in its thread tears itself down). Its record is already
        final, so the teardown's outcome is not recorded; what matters is that it runs.
        """
        work = self._executor.teardown(self._specs[i], handle, self._timeouts[i])
        self._grace.abandon(asyncio.get_running_loop().create_task(work, context=context))

    def skip_all(self) -> None:
        """Record every set-up task as not torn down (CANCELLED): the caller wants out."""
        for i in list(self._handles):
            self._done(i, _CANCELLED, 0.0, None)

    async def run(self, *, interrupted: bool) -> None:
        """Tear down every set-up task, dependants first; every one is attempted.

        The first cancellation of a run that was not ``interrupted`` yet is held back
        until every teardown has run (each is bounded by its timeout); a second one
        cancels the teardowns in flight (waiting the grace for them), records what is
        left as CANCELLED and propagates.
        """
        loop = asyncio.get_running_loop()
        n = len(self._specs)
        keys = [-i for i in range(n)]
        gate = Gate(self._children, self._parents, keys)
        resources = Resources.of(self._specs, self._caps, gate, keys)
        running: dict[asyncio.Task[None], int] = {}
        held: asyncio.CancelledError | None = None
        try:
            while gate or running:
                while gate and len(running) < self._limit:
                    i = gate.pop()
                    if i not in self._handles:
                        gate.done(i)  # nothing to undo here: unblock its parents
                        continue
                    if resources is not None and not resources.take(i):
                        continue  # parked: back in the gate once what it needs is free
                    # The very Context of an async setup, not a copy: a context variable
                    # set before ``yield`` must be readable and resettable after it.
                    context = self._contexts.get(i)
                    if context is None:
                        context = self._base_context.copy()
                    task = loop.create_task(self._one(i, context), context=context)
                    running[task] = i
                if not running:
                    continue
                try:
                    finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                except asyncio.CancelledError as exc:
                    if held is not None or interrupted:
                        raise  # a second interrupt: stop tearing down
                    held = exc
                    continue
                for task in finished:
                    i = running.pop(task)
                    if resources is not None:
                        resources.give_back(i)
                    gate.done(i)
        except BaseException:
            try:
                await self._grace.cancel(list(running))
            finally:
                self.skip_all()
            raise
        if held is not None:
            raise held

    async def _one(self, i: int, context: contextvars.Context) -> None:
        """Tear down task ``i`` within its timeout and record how it went."""
        spec = self._specs[i]
        handle = self._handles[i]
        timeout = self._timeouts[i]
        began = time.time()  # when, for the report; perf_counter measures how long
        started = time.perf_counter()
        work = self._executor.teardown(spec, handle, timeout)
        inner = None  # a sync teardown overrunning its timeout is abandoned by the executor
        if timeout is not None and spec.kind is TaskKind.ASYNC_GENERATOR:
            # Async code can swallow its timeout's cancellation: wait for it in a task of
            # its own (in the same Context), and give up on it the grace period later.
            inner = asyncio.get_running_loop().create_task(work, context=context)
        try:
            if inner is None or timeout is None:
                outcome = await work
            elif await self._grace.wait(inner, timeout):
                outcome = inner.result()
            else:
                overdue = TaskTimeoutError(spec.name, timeout, phase="teardown")
                outcome = AttemptOutcome(TaskStatus.TIMED_OUT, error=overdue)
        except asyncio.CancelledError:
            if inner is not None:
                inner.cancel()
            self._done(i, _CANCELLED, time.perf_counter() - started, None, began)
            raise
        error = TaskError.from_exception(outcome.error) if outcome.error is not None else None
        self._done(i, outcome.status, time.perf_counter() - started, error, began)

    def _done(
        self,
        i: int,
        status: TaskStatus,
        seconds: float,
        error: TaskError | None,
        started_at: float | None = None,
    ) -> None:
        if self._handles.pop(i, None) is None:
            return
        self._contexts.pop(i, None)
        if status is not _SUCCESS:
            self.failed = True
        self._ledger.torn_down(i, status, seconds, error, started_at)
