"""The ledger of a run: its task records, changed only by named transitions.

Each transition (started, succeeded, retrying, ended, skipped, torn down) makes the task's
new immutable record from the previous one and mirrors it to the state store. A store
that raises must not stall the run: its first error is kept for the run to raise once
it is over. Imports ``flowrun.state`` and the ``Dag`` type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrun.dag import Dag
from flowrun.state import (
    RunRecord,
    RunStatus,
    StateStoreProtocol,
    TaskError,
    TaskRunRecord,
    TaskStatus,
    _task_record,
)

__all__ = ["Ledger"]

_PENDING = TaskStatus.PENDING
_RUNNING = TaskStatus.RUNNING
_SUCCESS = TaskStatus.SUCCESS
_SKIPPED = TaskStatus.SKIPPED


class Ledger:
    """The records of one run's tasks, by index, mirrored to ``store`` under ``run_id``.

    ``records[i]`` is task ``i``'s current record; ``store_error`` the first exception the
    store raised, if any.
    """

    __slots__ = ("records", "run_id", "store", "store_error")

    def __init__(
        self,
        store: StateStoreProtocol,
        run_id: str,
        dag: Dag,
        started_at: float,
        executor: str | None = None,
        resources: Mapping[str, int] | None = None,
        held: Mapping[str, tuple[tuple[str, int], ...]] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.store_error: Exception | None = None
        self.records = records = [_task_record(s.name, _PENDING, s.deps) for s in dag.specs]
        store.create(
            RunRecord(
                run_id=run_id,
                dag_name=dag.name,
                status=RunStatus.RUNNING,
                started_at=started_at,
                tasks={r.name: r for r in records},
                executor=executor,
                resources=dict(resources or {}),
                task_resources={name: dict(pairs) for name, pairs in (held or {}).items()},
            )
        )

    def started(self, i: int, attempt: int, ready_at: float | None, now: float) -> None:
        """Attempt number ``attempt`` of task ``i`` started at ``now``.

        ``started_at`` stays the first attempt's start: retries count as running time.
        """
        previous = self.records[i]
        started = previous.started_at if previous.started_at is not None else now
        self._set(
            i, _task_record(previous.name, _RUNNING, previous.deps, attempt, ready_at, started)
        )

    def started_late(self, i: int, started_at: float) -> None:
        """The first attempt queued for a worker of the pool: it started at ``started_at``."""
        r = self.records[i]
        self._set(i, _task_record(r.name, _RUNNING, r.deps, 1, r.ready_at, started_at))

    def succeeded(self, i: int, now: float, value: Any) -> None:
        """Task ``i`` succeeded at ``now`` with result ``value``."""
        r = self.records[i]
        self._set(
            i,
            _task_record(
                r.name, _SUCCESS, r.deps, r.attempts, r.ready_at, r.started_at, now, value
            ),
        )

    def retrying(self, i: int, error: TaskError | None) -> None:
        """An attempt of task ``i`` failed with ``error`` and another one is coming."""
        r = self.records[i]
        self._set(
            i,
            _task_record(
                r.name, _PENDING, r.deps, r.attempts, r.ready_at, r.started_at, error=error
            ),
        )

    def ended(self, i: int, status: TaskStatus, now: float, error: TaskError | None) -> None:
        """Task ``i`` ended without a result: FAILED, TIMED_OUT, CANCELLED or SKIPPED.

        ``finished_at`` is ``now`` if it had started, else None.
        """
        r = self.records[i]
        finished = now if r.started_at is not None else None
        self._set(
            i,
            _task_record(
                r.name, status, r.deps, r.attempts, r.ready_at, r.started_at, finished, None, error
            ),
        )

    def skipped(self, i: int, because: str) -> None:
        """Task ``i`` will not run: its ancestor ``because`` did not succeed."""
        r = self.records[i]
        self._set(i, _task_record(r.name, _SKIPPED, r.deps, skipped_because=because))

    def torn_down(
        self,
        i: int,
        status: TaskStatus,
        seconds: float,
        error: TaskError | None,
        started_at: float | None = None,
    ) -> None:
        """The code after task ``i``'s ``yield``, begun at ``started_at`` (None if it never
        began), ended with ``status`` after ``seconds``."""
        r = self.records[i]
        self._set(
            i,
            _task_record(
                r.name,
                r.status,
                r.deps,
                r.attempts,
                r.ready_at,
                r.started_at,
                r.finished_at,
                r.result,
                r.error,
                r.skipped_because,
                status,
                seconds,
                error,
                started_at,
            ),
        )

    def finalize(self, status: RunStatus, now: float) -> None:
        """Set the run's final status in the store (its errors propagate)."""
        self.store.finalize(self.run_id, status, now)

    def _set(self, i: int, record: TaskRunRecord) -> None:
        self.records[i] = record
        try:
            self.store.mark(self.run_id, record)
        except Exception as exc:
            if self.store_error is None:
                self.store_error = exc
