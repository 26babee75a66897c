"""The errors flowrun raises, all under one base class.

::

    FlowrunError
    ├── TaskDefinitionError (TypeError)        a task is declared wrongly
    │   ├── TaskSignatureError                 a parameter flowrun cannot fill
    │   └── InvalidDependencyError             a ``deps`` entry is not a task
    ├── InvalidOptionError (ValueError)        an option is out of range
    │   ├── InvalidTimeoutError                ``timeout_s`` is not a positive duration
    │   ├── InvalidRetriesError                ``retries`` is not a whole number >= 0
    │   ├── InvalidMaxParallelError            ``max_parallel`` is not a whole number >= 1
    │   └── InvalidResourceError               a resource amount or cap out of range, or uncapped
    ├── DuplicateTaskError (ValueError)        two functions under one name
    ├── MissingDependencyError (LookupError)   a dependency is not registered
    ├── CycleError (ValueError)                tasks depend on each other in a circle
    │   └── SelfDependencyError                a task depends on itself
    ├── UnknownTaskError (LookupError)         a task name is not in the DAG
    ├── UnknownRunError (LookupError)          no run with that id
    ├── RunFinalizedError (RuntimeError)       a finalized run's records are changed
    ├── TaskFailedError                        a task asked for did not succeed
    ├── TaskTimeoutError (TimeoutError)        recorded as the error of a timed-out task
    └── GeneratorProtocolError (RuntimeError)  recorded: a generator task did not yield once

Every validation error is raised before the first task starts: a run never half-runs
because of bad input. The last two are never raised to the caller: they are what a run
records as a task's error. This module imports nothing from flowrun; the other modules
re-export the errors they raise under their old import paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowrun.state import TaskError, TaskStatus

__all__ = [
    "CycleError",
    "DuplicateTaskError",
    "FlowrunError",
    "GeneratorProtocolError",
    "InvalidDependencyError",
    "InvalidMaxParallelError",
    "InvalidOptionError",
    "InvalidResourceError",
    "InvalidRetriesError",
    "InvalidTimeoutError",
    "MissingDependencyError",
    "RunFinalizedError",
    "SelfDependencyError",
    "TaskDefinitionError",
    "TaskFailedError",
    "TaskSignatureError",
    "TaskTimeoutError",
    "UnknownRunError",
    "UnknownTaskError",
]


class FlowrunError(Exception):
    """Base class of every error flowrun raises."""


class TaskDefinitionError(FlowrunError, TypeError):
    """Raised when a task is declared in a way flowrun cannot run."""

    def __init__(self, task: str, message: str) -> None:
        self.task = task
        super().__init__(message)


class TaskSignatureError(TaskDefinitionError):
    """Raised when a task has a parameter that flowrun cannot fill."""

    def __init__(self, task: str, parameter: str, reason: str) -> None:
        self.parameter = parameter
        super().__init__(task, f"task {task!r}: parameter {parameter!r} {reason}")


class InvalidDependencyError(TaskDefinitionError):
    """Raised when an entry of ``deps`` is neither a task name nor a registered task."""

    def __init__(self, task: str, dependency: object, reason: str) -> None:
        self.dependency = dependency
        super().__init__(task, f"task {task!r}: dependency {dependency!r} {reason}")


class InvalidOptionError(FlowrunError, ValueError):
    """Raised when an option (``timeout_s``, ``retries``, ``max_parallel``...) is out of range."""

    def __init__(
        self, option: str, value: object, expected: str, *, task: str | None = None
    ) -> None:
        self.option = option
        self.value = value
        self.task = task
        where = f"task {task!r}: " if task is not None else ""
        super().__init__(f"{where}{option}={value!r} is invalid: {expected}")


class InvalidTimeoutError(InvalidOptionError):
    """Raised when ``timeout_s`` (or ``default_timeout_s``) is not a positive number of seconds."""


class InvalidRetriesError(InvalidOptionError):
    """Raised when ``retries`` is not a whole number >= 0."""


class InvalidMaxParallelError(InvalidOptionError):
    """Raised when ``SchedulerConfig.max_parallel`` is not a whole number >= 1."""


class InvalidResourceError(InvalidOptionError):
    """Raised when a task's ``resources`` or ``SchedulerConfig.resources`` cannot be used.

    An amount or a cap that is not a whole number >= 1, a name that is not a non-empty
    string, a resource that a task declares and no cap names, or an amount above its cap
    (the task could never start). ``resource`` is the resource's name (None when the
    whole mapping is wrong) and ``task`` the task, if a task is at fault.
    """

    def __init__(
        self, resource: str | None, value: object, expected: str, *, task: str | None = None
    ) -> None:
        self.resource = resource
        option = "resources" if resource is None else f"resources[{resource!r}]"
        super().__init__(option, value, expected, task=task)


class DuplicateTaskError(FlowrunError, ValueError):
    """Raised when a different function is registered under a name that is already taken."""

    def __init__(self, task: str, existing: str, new: str) -> None:
        self.task = task
        super().__init__(
            f"task name {task!r} is already taken by {existing}; cannot register {new} under it "
            f"(pass name=... to give one of them another name, or unregister the old one first)"
        )


class MissingDependencyError(FlowrunError, LookupError):
    """Raised when a task depends on a name that no registered task has."""

    def __init__(self, task: str, missing: str, suggestions: Sequence[str] = ()) -> None:
        self.task = task
        self.missing = missing
        self.suggestions = tuple(suggestions)
        hint = ""
        if self.suggestions:
            hint = " (did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?)"
        super().__init__(f"task {task!r} depends on {missing!r}, which is not registered{hint}")


class CycleError(FlowrunError, ValueError):
    """Raised when tasks depend on each other in a circle; ``cycle`` lists it, first == last."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        super().__init__(
            "tasks depend on each other in a cycle: "
            + " -> ".join(self.cycle)
            + " (each task depends on the next; remove one of these dependencies)"
        )


class SelfDependencyError(CycleError):
    """Raised when a task lists itself among its own dependencies."""

    def __init__(self, task: str) -> None:
        self.task = task
        FlowrunError.__init__(self, f"task {task!r} depends on itself; remove it from its deps")
        self.cycle = (task, task)


class UnknownTaskError(FlowrunError, LookupError):
    """Raised when a task name asked for is not part of the DAG or run."""

    def __init__(self, task: str, known: Sequence[str] = ()) -> None:
        from difflib import get_close_matches

        self.task = task
        close = get_close_matches(task, list(known), n=3)
        hint = (" (did you mean " + " or ".join(repr(c) for c in close) + "?)") if close else ""
        super().__init__(f"no task named {task!r}{hint}")


class UnknownRunError(FlowrunError, LookupError):
    """Raised when a run id is not in the state store."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"no run with id {run_id!r} in the state store "
            "(run ids come from Engine.run_once; old runs may have been evicted)"
        )


class TaskTimeoutError(FlowrunError, TimeoutError):
    """Recorded as the error of an attempt that ran longer than its ``timeout_s``."""

    def __init__(self, task: str, timeout_s: float, *, phase: str = "attempt") -> None:
        self.task = task
        self.timeout_s = timeout_s
        super().__init__(f"task {task!r}: {phase} timed out after {timeout_s:g}s")


class RunFinalizedError(FlowrunError, RuntimeError):
    """Raised when a finalized run is changed: its records are final."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id!r} is finalized; its records can no longer change")


class TaskFailedError(FlowrunError):
    """Raised when a task awaited with ``ActiveRun.result`` did not succeed.

    ``task`` is the task asked for, ``status`` its final status, ``cause`` the task that
    actually failed (itself, or the ancestor that made it SKIPPED) and ``error`` its error.
    """

    def __init__(self, task: str, status: TaskStatus, cause: str, error: TaskError | None) -> None:
        self.task = task
        self.status = status
        self.cause = cause
        self.error = error
        if cause != task:
            message = f"task {task!r} was skipped because task {cause!r} did not succeed"
        else:
            message = f"task {task!r} {_FAILED_HOW.get(status, str(status))}"
        if error is not None:
            message += f": {error}"
        super().__init__(message)


#: How ``TaskFailedError`` words a status (``TaskStatus`` is a ``StrEnum``).
_FAILED_HOW = {
    "FAILED": "failed",
    "TIMED_OUT": "timed out",
    "CANCELLED": "was cancelled",
    "SKIPPED": "was skipped",
}


class GeneratorProtocolError(FlowrunError, RuntimeError):
    """Recorded as the error of a generator task that did not yield exactly once."""

    def __init__(self, task: str, problem: str) -> None:
        self.task = task
        super().__init__(f"task {task!r} {problem}")
