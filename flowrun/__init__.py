"""flowrun: a minimalist orchestration runtime for IO-bound work.

Decorate functions with ``@task``, declare their dependencies, and let an ``Engine`` run
them as a DAG: concurrently under ``max_parallel``, with timeouts, retries and
skip-on-failure, every task recorded in a state store and reported as plain JSON.

The public modules, each importing only those above it::

    flowrun.errors     the error tree (imports nothing from flowrun)
    flowrun.context    RunContext, the shared bundle a task may take
    flowrun.task       @task, TaskSpec, TaskRegistry
    flowrun.dag        build_dag, Dag: validation and order (pure, no asyncio)
    flowrun.state      statuses, records, the state store
    flowrun.executor   one attempt of one task, bounded by its timeout
    flowrun.scheduler  SchedulerConfig, Scheduler, ActiveRun: the run driver
    flowrun.engine     Engine, build_default_engine, run_once, the run report

Private modules each hold one part of these, and say in their docstring what they hold
and what they import:

    _signature, _checks  for task: reading a task's function; checking options
    _threads, _sync      for executor: flowrun's daemon-thread pool; the worker side
    _run                 for scheduler: ActiveRun, the driver over the run's parts:
      _gate                which ready task starts next (pure)
      _attempts            the attempts in flight under max_parallel
      _deadlines           the timeouts of async attempts, one timer per value
      _resources           per-resource caps (only when tasks declare resources)
      _ledger              the task records, mirrored to the state store
      _teardown            the set-up generator tasks, undone in reverse order
      _grace               cancel, wait the grace period, abandon
    _report              for engine: the JSON run report
    _gc                  the cyclic GC paused around bulk allocation

PYTEST_DONT_REWRITE: the pytest plugin imports the runtime without pytest's assert
rewriting (``pytest_flowrun._imports``); this tells pytest that is intended.
"""

from __future__ import annotations

from flowrun.context import RunContext
from flowrun.dag import Dag, build_dag
from flowrun.engine import Engine, RunSession, build_default_engine
from flowrun.errors import (
    CycleError,
    DuplicateTaskError,
    FlowrunError,
    GeneratorProtocolError,
    InvalidDependencyError,
    InvalidMaxParallelError,
    InvalidOptionError,
    InvalidResourceError,
    InvalidRetriesError,
    InvalidTimeoutError,
    MissingDependencyError,
    RunFinalizedError,
    SelfDependencyError,
    TaskDefinitionError,
    TaskFailedError,
    TaskSignatureError,
    TaskTimeoutError,
    UnknownRunError,
    UnknownTaskError,
)
from flowrun.scheduler import ActiveRun, Scheduler, SchedulerConfig
from flowrun.state import (
    RunRecord,
    RunStatus,
    StateStore,
    StateStoreProtocol,
    TaskError,
    TaskRunRecord,
    TaskStatus,
)
from flowrun.task import TaskRegistry, TaskSpec, default_registry, task

__all__ = [
    "ActiveRun",
    "CycleError",
    "Dag",
    "DuplicateTaskError",
    "Engine",
    "FlowrunError",
    "GeneratorProtocolError",
    "InvalidDependencyError",
    "InvalidMaxParallelError",
    "InvalidOptionError",
    "InvalidResourceError",
    "InvalidRetriesError",
    "InvalidTimeoutError",
    "MissingDependencyError",
    "RunContext",
    "RunFinalizedError",
    "RunRecord",
    "RunSession",
    "RunStatus",
    "Scheduler",
    "SchedulerConfig",
    "SelfDependencyError",
    "StateStore",
    "StateStoreProtocol",
    "TaskDefinitionError",
    "TaskError",
    "TaskFailedError",
    "TaskRegistry",
    "TaskRunRecord",
    "TaskSignatureError",
    "TaskSpec",
    "TaskStatus",
    "TaskTimeoutError",
    "UnknownRunError",
    "UnknownTaskError",
    "__version__",
    "build_dag",
    "build_default_engine",
    "default_registry",
    "task",
]


def __getattr__(name: str) -> str:
    # The version comes from the installed package's metadata, read only when asked for:
    # importing importlib.metadata would cost every pytest run that loads the plugin.
    if name == "__version__":
        from importlib.metadata import version

        return version("flowrun")
    raise AttributeError(f"module 'flowrun' has no attribute {name!r}")
