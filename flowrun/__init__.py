"""flowrun: a minimalist orchestration runtime for IO-bound work.

Decorate functions with ``@task``, declare their dependencies, and let an ``Engine`` run
them as a DAG: concurrently under ``max_parallel``, with timeouts, retries and
skip-on-failure, every task recorded in a state store and reported as plain JSON.
"""

from __future__ import annotations

from flowrun.context import RunContext
from flowrun.dag import Dag, build_dag
from flowrun.engine import Engine, RunSession, build_default_engine
from flowrun.errors import (
    CycleError,
    DuplicateTaskError,
    FlowrunError,
    InvalidDependencyError,
    InvalidMaxParallelError,
    InvalidOptionError,
    InvalidRetriesError,
    InvalidTimeoutError,
    MissingDependencyError,
    SelfDependencyError,
    TaskDefinitionError,
    TaskSignatureError,
    TaskTimeoutError,
    UnknownRunError,
    UnknownTaskError,
)
from flowrun.scheduler import ActiveRun, Scheduler, SchedulerConfig, TaskFailedError
from flowrun.state import (
    RunFinalizedError,
    RunRecord,
    RunStatus,
    StateStore,
    StateStoreProtocol,
    TaskError,
    TaskRunRecord,
    TaskStatus,
)
from flowrun.task import TaskRegistry, TaskSpec, default_registry, task

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "CycleError",
    "Dag",
    "DuplicateTaskError",
    "Engine",
    "FlowrunError",
    "InvalidDependencyError",
    "InvalidMaxParallelError",
    "InvalidOptionError",
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
