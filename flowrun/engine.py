"""The facade: ``Engine`` ties a registry to a scheduler; ``build_default_engine`` wires it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from types import TracebackType
from typing import Any

from flowrun._report import build_report
from flowrun.context import RunContext
from flowrun.dag import Dag, build_dag
from flowrun.scheduler import ActiveRun, Scheduler, SchedulerConfig
from flowrun.state import StateStore, StateStoreProtocol
from flowrun.task import TaskRegistry, default_registry

__all__ = ["Engine", "RunSession", "build_default_engine"]


class Engine:
    """Runs the tasks of a registry as a DAG through a scheduler and reports on the runs.

    Among ready tasks, the one with the longest remaining path starts first: counted in
    tasks, or weighted by the durations a caller passes as ``session(expected_s=...)``.
    Run times measured by earlier runs are not used, so one engine runs a DAG in the same
    order every time.
    """

    def __init__(self, registry: TaskRegistry, scheduler: Scheduler) -> None:
        self.registry = registry
        self.scheduler = scheduler
        self.last_run_id: str | None = None

    @property
    def state_store(self) -> StateStoreProtocol:
        """The store the scheduler records runs in."""
        return self.scheduler.state_store

    def build_dag(self, name: str, *, tasks: Iterable[str] | None = None) -> Dag:
        """Snapshot the registry and validate it as DAG ``name``.

        With ``tasks`` (names, or one name), only those tasks and their ancestors are kept.
        Raises the validation errors of ``flowrun.dag.build_dag`` and ``UnknownTaskError``.
        """
        dag = build_dag(name, self.registry.snapshot())
        if isinstance(tasks, str):  # one name, not the names of its letters
            tasks = [tasks]
        return dag.subgraph(tasks) if tasks is not None else dag

    def display_dag(self, name: str, *, tasks: Iterable[str] | None = None) -> str:
        """Print a readable view of the DAG and return it.

        It names the injected executor, if any, and the resource caps, if any are set.
        """
        scheduler = self.scheduler
        executor = scheduler.executor
        text = self.build_dag(name, tasks=tasks).render(
            executor=type(executor).__name__ if executor is not None else None,
            resources=scheduler.config.resources,
        )
        print(text)
        return text

    async def run_once(
        self,
        name: str,
        context: RunContext[Any] | None = None,
        *,
        tasks: Iterable[str] | None = None,
    ) -> str:
        """Run DAG ``name`` once, teardown included, and return the run id.

        Task failures do not raise: they are in the report. Validation errors raise before
        anything runs. If the call is cancelled, running tasks are cancelled, the rest are
        recorded as CANCELLED, set-up generator tasks are torn down, and the cancellation
        propagates. If the state store raised, the run still goes to its end and the
        store's first error is raised then.
        """
        async with self.session(name, context, tasks=tasks) as run:
            await run.wait()
        return run.run_id

    def session(
        self,
        name: str,
        context: RunContext[Any] | None = None,
        *,
        tasks: Iterable[str] | None = None,
        expected_s: Mapping[str, float] | None = None,
    ) -> RunSession:
        """A run whose set-up resources live until the ``async with`` block ends.

        ``async with engine.session("name", ctx) as run:`` starts the run and gives the
        ``ActiveRun`` at once; ``await run.result("task")`` waits for one task. Leaving the
        block waits for the remaining tasks (or cancels them if the block raised) and then
        tears down the generator tasks.
        """
        return RunSession(self, self.build_dag(name, tasks=tasks), context, expected_s)

    def get_run_report(self, run_id: str) -> dict[str, Any]:
        """The run as a plain JSON-serialisable dict; raises ``UnknownRunError``."""
        return build_report(self.state_store.get(run_id))


class RunSession:
    """The async context manager returned by ``Engine.session``."""

    def __init__(
        self,
        engine: Engine,
        dag: Dag,
        context: RunContext[Any] | None,
        expected_s: Mapping[str, float] | None,
    ) -> None:
        self._engine = engine
        self._dag = dag
        self._context = context
        self._expected = dict(expected_s or {})  # never measured ones: they vary run to run
        self._run: ActiveRun | None = None

    async def __aenter__(self) -> ActiveRun:
        self._run = self._engine.scheduler.start(
            self._dag, self._context, expected_s=self._expected
        )
        self._engine.last_run_id = self._run.run_id
        return self._run

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        run = self._run
        if run is None:
            return
        await run.finish(cancel=exc is not None)


def build_default_engine(
    executor: Executor | None = None,
    registry: TaskRegistry | None = None,
    state_store: StateStoreProtocol | None = None,
    config: SchedulerConfig | None = None,
) -> Engine:
    """An ``Engine`` wired with the defaults: the default registry (the one a bare ``@task``
    fills), an in-memory ``StateStore`` and ``SchedulerConfig()``.

    A passed ``executor`` stays yours to shut down; without one, each run uses a thread
    pool that flowrun creates and closes.
    """
    scheduler = Scheduler(
        config,
        state_store=state_store if state_store is not None else StateStore(),
        executor=executor,
    )
    return Engine(registry if registry is not None else default_registry, scheduler)
