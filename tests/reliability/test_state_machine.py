"""A stateful test of the state store interface: any sequence of create, mark, finalize
and get keeps the store consistent with a simple model, and every invalid operation
raises a typed ``FlowrunError`` and changes nothing.

The machine runs against every store the project ships (``STORE_FACTORIES``); a new store
joins the list and gets the same test. Eviction (``max_runs``) is checked exactly for
stores that declare ``max_runs``; any store may keep everything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from flowrun.errors import FlowrunError, UnknownRunError, UnknownTaskError
from flowrun.state import (
    RunFinalizedError,
    RunRecord,
    RunStatus,
    StateStore,
    StateStoreProtocol,
    TaskRunRecord,
    TaskStatus,
)

STORE_FACTORIES: dict[str, Callable[[], StateStoreProtocol]] = {
    "StateStore()": StateStore,
    "StateStore(max_runs=2)": lambda: StateStore(max_runs=2),
    "StateStore(max_runs=None)": lambda: StateStore(max_runs=None),
}

TASK_NAMES = ["a", "b", "c", "d", "e"]
FINAL = [RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED]
times = st.floats(0, 1e9, allow_nan=False)


@dataclass
class ModelRun:
    dag_name: str
    started_at: float
    tasks: dict[str, TaskRunRecord]
    status: RunStatus = RunStatus.RUNNING
    finished_at: float | None = None
    finalized: bool = False


@dataclass
class Snapshot:
    """A ``get`` result and what it showed when taken: later changes must not reach it."""

    record: RunRecord
    status: RunStatus
    tasks: dict[str, TaskRunRecord] = field(default_factory=dict)


def records(name: str) -> st.SearchStrategy[TaskRunRecord]:
    return st.builds(
        TaskRunRecord,
        name=st.just(name),
        status=st.sampled_from(TaskStatus),
        attempts=st.integers(0, 5),
        started_at=st.none() | times,
    )


class StoreMachine(RuleBasedStateMachine):
    """Drives one store; subclasses set ``factory``."""

    factory: Callable[[], StateStoreProtocol] = StateStore
    run_ids = Bundle("run_ids")

    def __init__(self) -> None:
        super().__init__()
        self.store = self.factory()
        self.max_runs: int | None = getattr(self.store, "max_runs", None)
        self.model: dict[str, ModelRun] = {}  # runs the store must still hold, oldest first
        self.evicted: set[str] = set()
        self.counter = 0
        self.snapshots: list[Snapshot] = []

    # -- valid operations ---------------------------------------------------------------

    @rule(
        target=run_ids,
        names=st.lists(st.sampled_from(TASK_NAMES), unique=True, max_size=5),
        started_at=times,
    )
    def create(self, names: list[str], started_at: float) -> str:
        self.counter += 1
        run_id = f"run-{self.counter}"
        tasks = {n: TaskRunRecord(n, TaskStatus.PENDING) for n in names}
        self.store.create(
            RunRecord(run_id, f"dag-{self.counter}", RunStatus.RUNNING, started_at, None, tasks)
        )
        self.model[run_id] = ModelRun(f"dag-{self.counter}", started_at, dict(tasks))
        if self.max_runs is not None and len(self.model) > self.max_runs:
            for old in [rid for rid, m in self.model.items() if m.finalized]:
                if len(self.model) <= self.max_runs:
                    break
                del self.model[old]
                self.evicted.add(old)
            # Bounded: only runs in progress may keep the store above max_runs.
            unfinalized = sum(not r.finalized for r in self.model.values())
            assert len(self.model) <= max(self.max_runs, unfinalized)
        return run_id

    @rule(run_id=run_ids, data=st.data())
    def mark(self, run_id: str, data: st.DataObject) -> None:
        run = self.model.get(run_id)
        name = data.draw(st.sampled_from(TASK_NAMES))
        record = data.draw(records(name))
        if run is None:
            self.expect(UnknownRunError, self.store.mark, run_id, record)
        elif run.finalized:
            self.expect(RunFinalizedError, self.store.mark, run_id, record)
        elif name not in run.tasks:
            self.expect(UnknownTaskError, self.store.mark, run_id, record)
        else:
            self.store.mark(run_id, record)
            run.tasks[name] = record

    @rule(run_id=run_ids, status=st.sampled_from(FINAL), finished_at=times)
    def finalize(self, run_id: str, status: RunStatus, finished_at: float) -> None:
        run = self.model.get(run_id)
        if run is None:
            self.expect(UnknownRunError, self.store.finalize, run_id, status, finished_at)
        elif run.finalized:
            self.expect(RunFinalizedError, self.store.finalize, run_id, status, finished_at)
        else:
            self.store.finalize(run_id, status, finished_at)
            run.status, run.finished_at, run.finalized = status, finished_at, True

    @rule(run_id=run_ids)
    def get(self, run_id: str) -> None:
        run = self.model.get(run_id)
        if run is None:
            self.expect(UnknownRunError, self.store.get, run_id)
            return
        snapshot = self.store.get(run_id)
        self.check_run(run_id, snapshot, run)
        if len(self.snapshots) < 5:
            self.snapshots.append(Snapshot(snapshot, run.status, dict(run.tasks)))

    # -- invalid operations: a typed error, and nothing changes -------------------------

    @rule(run_id=run_ids)
    def create_duplicate(self, run_id: str) -> None:
        if run_id not in self.model:
            return  # evicted ids may be reused; nothing to check
        self.expect(ValueError, self.store.create, RunRecord(run_id, "again"))

    @rule(run_id=run_ids, finished_at=times)
    def finalize_as_running(self, run_id: str, finished_at: float) -> None:
        run = self.model.get(run_id)
        if run is None:
            self.expect(
                UnknownRunError, self.store.finalize, run_id, RunStatus.RUNNING, finished_at
            )
        elif run.finalized:
            self.expect(
                RunFinalizedError, self.store.finalize, run_id, RunStatus.RUNNING, finished_at
            )
        else:
            self.expect(ValueError, self.store.finalize, run_id, RunStatus.RUNNING, finished_at)

    @rule(run_id=st.text(min_size=1, max_size=8))
    def unknown_run(self, run_id: str) -> None:
        if run_id in self.model:
            return
        self.expect(UnknownRunError, self.store.get, run_id)
        self.expect(UnknownRunError, self.store.mark, run_id, TaskRunRecord("a"))
        self.expect(UnknownRunError, self.store.finalize, run_id, RunStatus.SUCCESS, 0.0)

    @rule(run_id=consumes(run_ids))
    def forget(self, run_id: str) -> None:
        """Drop an id from the bundle (keeps the bundle small); the store is untouched."""

    # -- checks -------------------------------------------------------------------------

    @staticmethod
    def expect(error: type[Exception], call: Callable[..., object], *args: object) -> None:
        with pytest.raises(error) as info:
            call(*args)
        assert isinstance(info.value, FlowrunError), f"{type(info.value)} is not a FlowrunError"
        assert str(info.value)

    def check_run(self, run_id: str, got: RunRecord, want: ModelRun) -> None:
        assert got.run_id == run_id
        assert got.dag_name == want.dag_name
        assert got.status is want.status
        assert got.started_at == want.started_at
        assert got.finished_at == want.finished_at
        assert list(got.tasks) == list(want.tasks), "task order changed"
        assert dict(got.tasks) == want.tasks
        with pytest.raises(TypeError):
            got.tasks["a"] = TaskRunRecord("a")  # type: ignore[index]

    @invariant()
    def every_kept_run_matches_the_model(self) -> None:
        for run_id, run in self.model.items():
            self.check_run(run_id, self.store.get(run_id), run)
        for run_id in self.evicted:
            if run_id not in self.model:
                self.expect(UnknownRunError, self.store.get, run_id)

    @invariant()
    def the_store_keeps_what_its_policy_says(self) -> None:
        run_ids = getattr(self.store, "run_ids", None)
        if run_ids is not None:
            assert run_ids() == list(self.model), "kept runs, oldest first"

    @invariant()
    def snapshots_never_change(self) -> None:
        for snap in self.snapshots:
            assert snap.record.status is snap.status
            assert dict(snap.record.tasks) == snap.tasks


@pytest.mark.parametrize("factory", list(STORE_FACTORIES.values()), ids=list(STORE_FACTORIES))
def test_state_store_stays_consistent(factory: Callable[[], StateStoreProtocol]) -> None:
    machine = type("Machine", (StoreMachine,), {"factory": staticmethod(factory)})
    run_state_machine_as_test(machine, settings=settings(stateful_step_count=40))
