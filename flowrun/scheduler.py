"""Concurrency and orchestration: the run driver, the ``max_parallel`` limit, state updates.

Scheduling is event-driven: a task is ready the moment its last parent succeeds and starts
as soon as a slot is free, never level by level. Among ready tasks the one with the
longest remaining path to a leaf goes first (path lengths weighted by expected durations,
one unit per task when none are known), ties broken by topological order; on a bounded
pool this keeps the critical path moving. A slot is held only while an attempt runs:
a task waiting out its ``retry_delay_s`` gives its slot back. Resources that tasks
declare (``@task(resources={"docker": 1})``) are capped per resource
(``SchedulerConfig(resources={"docker": 2})``) and held the same way; a ready task that
fits starts while one before it waits for a resource (see ``flowrun._resources``).

This module holds the configuration and the ``Scheduler``, which validates a run's inputs
and starts it. The run itself is an ``ActiveRun`` (defined in ``flowrun._run``, the
driver over the run's private parts). Only the engine imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from flowrun._checks import _check_resources, _is_real
from flowrun._run import ActiveRun
from flowrun.context import RunContext
from flowrun.dag import Dag
from flowrun.errors import (
    InvalidMaxParallelError,
    InvalidOptionError,
    InvalidResourceError,
    InvalidTimeoutError,
    TaskDefinitionError,
    TaskFailedError,
)
from flowrun.executor import TaskExecutor
from flowrun.state import RunRecord, StateStore, StateStoreProtocol
from flowrun.task import TaskKind

__all__ = ["ActiveRun", "Scheduler", "SchedulerConfig", "TaskFailedError"]

#: How long async task code that ignores its cancellation is waited for before it is
#: abandoned: after the run is cancelled, or after an attempt's or a teardown's timeout.
CANCEL_GRACE_S = 2.0


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """How runs are scheduled.

    ``max_parallel`` bounds the task bodies running at once (setup and teardown alike);
    ``default_timeout_s`` applies to tasks declared without ``timeout_s``.

    What a task body raises decides how it ends. An exception of ``skip_exceptions``
    (say ``unittest.SkipTest``) ends it SKIPPED with that reason, without retries, and
    its dependants SKIPPED too; the run does not fail for it. One of
    ``interrupt_exceptions`` fails the task and stops the run as a cancellation would
    (nothing more starts, the rest is cancelled, set-up tasks are torn down), and then
    ``finish`` (so ``run_once``) raises it again. Anything else, ``BaseException``
    included, fails the task like any error.

    ``resources`` caps each resource that tasks declare (``{"docker": 2}``: at most two
    ``docker`` held at once, by attempts and teardowns alike); it is kept as a read-only
    mapping. Raises ``InvalidMaxParallelError``, ``InvalidTimeoutError``,
    ``InvalidResourceError`` or ``InvalidOptionError`` for out-of-range values.
    """

    max_parallel: int = 16
    default_timeout_s: float | None = None
    skip_exceptions: tuple[type[BaseException], ...] = ()
    interrupt_exceptions: tuple[type[BaseException], ...] = (KeyboardInterrupt, SystemExit)
    resources: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        mp = self.max_parallel
        if not isinstance(mp, int) or isinstance(mp, bool) or mp < 1:
            raise InvalidMaxParallelError("max_parallel", mp, "a whole number >= 1")
        t = self.default_timeout_s
        if t is not None and (not _is_real(t) or not 0 < t < float("inf")):
            raise InvalidTimeoutError(
                "default_timeout_s", t, "a positive number of seconds, or None"
            )
        for option in ("skip_exceptions", "interrupt_exceptions"):
            value = getattr(self, option)
            if not isinstance(value, tuple) or not all(
                isinstance(e, type) and issubclass(e, BaseException) for e in value
            ):
                raise InvalidOptionError(option, value, "a tuple of exception classes")
        caps = MappingProxyType(dict(_check_resources(None, self.resources)))
        object.__setattr__(self, "resources", caps)  # a copy the caller cannot change


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

        Raises before anything runs if a task needs a context and none was given, a
        sync generator task would have to run in other processes (``TaskDefinitionError``),
        or a task needs a resource that no cap names or more of it than its cap
        (``InvalidResourceError``).
        """
        executor = TaskExecutor(self.executor, cancel_grace_s=CANCEL_GRACE_S)
        if context is not None and not isinstance(context, RunContext):
            context = RunContext(context)
        caps = self.config.resources
        for spec in dag.specs:
            for resource, amount in spec.resources:
                _check_fits(spec.name, resource, amount, caps)
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
                    f"task {spec.name!r} is a sync generator, which cannot run in "
                    f"{executor.name} (a process pool, or an executor whose calls run in other "
                    "processes): its setup and teardown must run in one thread of this "
                    "process; use a ThreadPoolExecutor, or make it an async generator",
                )
        return ActiveRun(
            self.config,
            self.state_store,
            dag,
            context,
            expected_s or {},
            executor,
            CANCEL_GRACE_S,
        )

    async def run(self, dag: Dag, context: RunContext[Any] | None = None) -> RunRecord:
        """Run ``dag`` to the end, teardown included, and return its final record."""
        active = self.start(dag, context)
        await active.finish()
        return self.state_store.get(active.run_id)


def _check_fits(task: str, resource: str, amount: int, caps: Mapping[str, int]) -> None:
    """Raise ``InvalidResourceError`` if ``task`` could never hold ``amount`` of ``resource``."""
    cap = caps.get(resource)
    if cap is None:
        raise InvalidResourceError(
            resource,
            amount,
            f"no cap is set for {resource!r}; "
            f"set one with SchedulerConfig(resources={{{resource!r}: N}})",
            task=task,
        )
    if amount > cap:
        raise InvalidResourceError(
            resource,
            amount,
            f"more than its cap of {cap}, so the task could never start",
            task=task,
        )
