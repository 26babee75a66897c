"""The run ledger: statuses, immutable run and task records, and the in-memory ``StateStore``.

A store has four operations: ``create`` a run with every task PENDING, ``mark`` a task
with its new record, ``finalize`` the run, and ``get`` a snapshot. ``StateStoreProtocol``
describes them, so a persistent store with the same methods can replace ``StateStore``.
The scheduler calls the store from the event loop's thread only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from flowrun.errors import (
    InvalidOptionError,
    RunFinalizedError,
    UnknownRunError,
    UnknownTaskError,
)

__all__ = [
    "RunFinalizedError",
    "RunRecord",
    "RunStatus",
    "StateStore",
    "StateStoreProtocol",
    "TaskError",
    "TaskRunRecord",
    "TaskStatus",
]


class TaskStatus(enum.StrEnum):
    """The state of one task in a run; prints as its plain name (``SUCCESS``)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """True for the states a task never leaves."""
        return self not in (TaskStatus.PENDING, TaskStatus.RUNNING)


class RunStatus(enum.StrEnum):
    """The state of a whole run: FAILED if any task failed, timed out or failed to tear down."""

    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class TaskError:
    """An exception as the report keeps it: type name, message and formatted traceback."""

    type: str
    message: str
    traceback: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> TaskError:
        """Capture ``exc`` with its traceback; an exception whose ``str()`` fails is kept too."""
        import traceback

        try:
            message = str(exc)
        except Exception:  # the task's own exception must not break the run's bookkeeping
            message = "<exception str() failed>"
        return cls(
            type=type(exc).__qualname__,
            message=message,
            traceback="".join(traceback.format_exception(exc)),
        )

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


@dataclass(frozen=True, slots=True)
class TaskRunRecord:
    """One task of one run. Timestamps are seconds since the epoch.

    ``ready_at`` is when its parents had all succeeded, ``started_at`` when its first
    attempt began running and ``finished_at`` when its last attempt ended, so queued and
    running time are told apart. ``skipped_because`` names the failed ancestor of a
    SKIPPED task. ``teardown_*`` describe the code after ``yield`` of a generator task
    (``teardown_started_at`` is when it began).
    """

    name: str
    status: TaskStatus = TaskStatus.PENDING
    deps: tuple[str, ...] = ()
    attempts: int = 0
    ready_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    result: Any = None
    error: TaskError | None = None
    skipped_because: str | None = None
    teardown_status: TaskStatus | None = None
    teardown_s: float | None = None
    teardown_error: TaskError | None = None
    teardown_started_at: float | None = None

    @property
    def duration_s(self) -> float | None:
        """Running time from the first attempt's start to the last one's end."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def queued_s(self) -> float | None:
        """Time between becoming ready and starting to run."""
        if self.ready_at is None or self.started_at is None:
            return None
        return self.started_at - self.ready_at


class _UnfrozenTaskRunRecord:
    """The slot layout of ``TaskRunRecord`` without its frozen ``__setattr__``."""

    __slots__ = TaskRunRecord.__slots__

    name: str
    status: TaskStatus
    deps: tuple[str, ...]
    attempts: int
    ready_at: float | None
    started_at: float | None
    finished_at: float | None
    result: Any
    error: TaskError | None
    skipped_because: str | None
    teardown_status: TaskStatus | None
    teardown_s: float | None
    teardown_error: TaskError | None
    teardown_started_at: float | None


def _task_record(
    name: str,
    status: TaskStatus,
    deps: tuple[str, ...],
    attempts: int = 0,
    ready_at: float | None = None,
    started_at: float | None = None,
    finished_at: float | None = None,
    result: Any = None,
    error: TaskError | None = None,
    skipped_because: str | None = None,
    teardown_status: TaskStatus | None = None,
    teardown_s: float | None = None,
    teardown_error: TaskError | None = None,
    teardown_started_at: float | None = None,
) -> TaskRunRecord:
    """``TaskRunRecord(...)`` with the same arguments and result, four times cheaper.

    The scheduler makes three records per task, and the frozen dataclass ``__init__``
    pays an ``object.__setattr__`` call per field: most of a no-op task's bookkeeping.
    This fills an object of identical slot layout and then makes it a ``TaskRunRecord``
    (``__class__`` assignment between same-layout classes), which is frozen from then on.
    """
    r = _UnfrozenTaskRunRecord()
    r.name = name
    r.status = status
    r.deps = deps
    r.attempts = attempts
    r.ready_at = ready_at
    r.started_at = started_at
    r.finished_at = finished_at
    r.result = result
    r.error = error
    r.skipped_because = skipped_because
    r.teardown_status = teardown_status
    r.teardown_s = teardown_s
    r.teardown_error = teardown_error
    r.teardown_started_at = teardown_started_at
    r.__class__ = TaskRunRecord  # type: ignore[assignment]
    return r  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of a DAG with the records of all its tasks, in topological order.

    ``executor`` is the class name of the executor that ran its sync tasks,
    ``resources`` the caps of the run's ``SchedulerConfig`` and ``task_resources`` what
    each task holds while it runs, for the tasks that declared any.
    """

    run_id: str
    dag_name: str
    status: RunStatus = RunStatus.RUNNING
    started_at: float | None = None
    finished_at: float | None = None
    tasks: Mapping[str, TaskRunRecord] = field(default_factory=dict)
    executor: str | None = None
    resources: Mapping[str, int] = field(default_factory=dict)
    task_resources: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        """Wall time of the run, teardown included."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@runtime_checkable
class StateStoreProtocol(Protocol):
    """What the scheduler needs of a state store."""

    def create(self, run: RunRecord) -> None:
        """Record a new run with its tasks (all PENDING)."""

    def get(self, run_id: str) -> RunRecord:
        """A snapshot of the run; raises ``UnknownRunError``."""

    def mark(self, run_id: str, record: TaskRunRecord) -> None:
        """Replace the record of task ``record.name`` in the run."""

    def finalize(self, run_id: str, status: RunStatus, finished_at: float) -> None:
        """Set the run's final status and end time."""


class _Entry:
    __slots__ = ("finalized", "header", "tasks")

    def __init__(self, header: RunRecord) -> None:
        self.tasks: dict[str, TaskRunRecord] = dict(header.tasks)
        self.header = replace(header, tasks={})
        self.finalized = False


class StateStore:
    """The in-memory state store; subclass it or implement ``StateStoreProtocol`` to persist.

    It keeps the ``max_runs`` most recent runs (None keeps all): older finalized runs are
    dropped when a new run is created, so a long-lived engine does not grow without bound.
    """

    def __init__(self, max_runs: int | None = 100) -> None:
        if max_runs is not None and (
            not isinstance(max_runs, int) or isinstance(max_runs, bool) or max_runs < 1
        ):
            raise InvalidOptionError("max_runs", max_runs, "a whole number >= 1, or None")
        self.max_runs = max_runs
        self._runs: dict[str, _Entry] = {}

    def create(self, run: RunRecord) -> None:
        """Record a new run; raises ``InvalidOptionError`` (a ``ValueError``) if its id is taken."""
        if run.run_id in self._runs:
            raise InvalidOptionError(
                "run_id", run.run_id, "a run with this id already exists; ids must be unique"
            )
        self._runs[run.run_id] = _Entry(run)
        if self.max_runs is not None and len(self._runs) > self.max_runs:
            for run_id in [rid for rid, e in self._runs.items() if e.finalized]:
                if len(self._runs) <= self.max_runs:
                    break
                del self._runs[run_id]

    def get(self, run_id: str) -> RunRecord:
        """A snapshot of the run, tasks included; raises ``UnknownRunError``."""
        entry = self._entry(run_id)
        return replace(entry.header, tasks=MappingProxyType(dict(entry.tasks)))

    def mark(self, run_id: str, record: TaskRunRecord) -> None:
        """Replace a task's record; raises for an unknown run or task or a finalized run."""
        entry = self._runs.get(run_id)
        if entry is None:
            raise UnknownRunError(run_id)
        if entry.finalized:
            raise RunFinalizedError(run_id)
        tasks = entry.tasks
        if record.name not in tasks:
            raise UnknownTaskError(record.name, list(tasks))
        tasks[record.name] = record

    def finalize(self, run_id: str, status: RunStatus, finished_at: float) -> None:
        """Set the final status; raises ``RunFinalizedError`` if already finalized and
        ``InvalidOptionError`` (a ``ValueError``) for RUNNING, which is not final."""
        entry = self._entry(run_id)
        if entry.finalized:
            raise RunFinalizedError(run_id)
        if status is RunStatus.RUNNING:
            raise InvalidOptionError(
                "status", status.value, "a run is finalized as SUCCESS, FAILED or CANCELLED"
            )
        entry.header = replace(entry.header, status=status, finished_at=finished_at)
        entry.finalized = True

    def run_ids(self) -> list[str]:
        """Ids of the runs kept, oldest first."""
        return list(self._runs)

    def _entry(self, run_id: str) -> _Entry:
        try:
            return self._runs[run_id]
        except KeyError:
            raise UnknownRunError(run_id) from None
