"""The run ledger: statuses, records and the in-memory ``StateStore`` with its interface."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowrun.engine import build_default_engine
from flowrun.errors import FlowrunError, InvalidOptionError, UnknownRunError, UnknownTaskError
from flowrun.state import (
    RunFinalizedError,
    RunRecord,
    RunStatus,
    StateStore,
    StateStoreProtocol,
    TaskRunRecord,
    TaskStatus,
)
from flowrun.task import TaskRegistry, task


def new_run(run_id: str = "r1", *names: str) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        dag_name="d",
        started_at=100.0,
        tasks={name: TaskRunRecord(name) for name in names or ("a",)},
    )


class TestStatuses:
    def test_terminal_states(self) -> None:
        assert {s for s in TaskStatus if s.is_terminal} == {
            TaskStatus.SUCCESS,
            TaskStatus.FAILED,
            TaskStatus.TIMED_OUT,
            TaskStatus.SKIPPED,
            TaskStatus.CANCELLED,
        }

    def test_run_statuses_print_as_plain_words(self) -> None:
        assert [str(s) for s in RunStatus] == ["RUNNING", "SUCCESS", "FAILED", "CANCELLED"]


class TestRecords:
    def test_durations_and_queue_time(self) -> None:
        record = TaskRunRecord("a", ready_at=10.0, started_at=10.5, finished_at=12.0)
        assert record.queued_s == 0.5
        assert record.duration_s == 1.5
        assert TaskRunRecord("b").duration_s is None
        assert TaskRunRecord("b").queued_s is None

    def test_records_are_immutable(self) -> None:
        record = TaskRunRecord("a")
        with pytest.raises(AttributeError):
            record.status = TaskStatus.SUCCESS  # type: ignore[misc]


class TestStateStore:
    def test_create_get_mark_finalize(self) -> None:
        store = StateStore()
        store.create(new_run("r1", "a", "b"))
        assert store.get("r1").status is RunStatus.RUNNING
        store.mark("r1", TaskRunRecord("a", TaskStatus.SUCCESS, result=3))
        snapshot = store.get("r1")
        assert snapshot.tasks["a"].result == 3
        assert snapshot.tasks["b"].status is TaskStatus.PENDING
        store.finalize("r1", RunStatus.SUCCESS, 105.0)
        final = store.get("r1")
        assert (final.status, final.finished_at, final.duration_s) == (
            RunStatus.SUCCESS,
            105.0,
            5.0,
        )
        assert snapshot.status is RunStatus.RUNNING  # a snapshot does not change afterwards

    def test_get_returns_a_read_only_snapshot(self) -> None:
        store = StateStore()
        store.create(new_run())
        with pytest.raises(TypeError):
            store.get("r1").tasks["a"] = TaskRunRecord("a")  # type: ignore[index]

    def test_unknown_run(self) -> None:
        store = StateStore()
        for call in (
            lambda: store.get("nope"),
            lambda: store.mark("nope", TaskRunRecord("a")),
            lambda: store.finalize("nope", RunStatus.SUCCESS, 1.0),
        ):
            with pytest.raises(UnknownRunError, match="'nope'"):
                call()

    def test_unknown_task(self) -> None:
        store = StateStore()
        store.create(new_run("r1", "a"))
        with pytest.raises(UnknownTaskError, match="'b'"):
            store.mark("r1", TaskRunRecord("b"))

    def test_a_finalized_run_cannot_change(self) -> None:
        store = StateStore()
        store.create(new_run())
        store.finalize("r1", RunStatus.FAILED, 101.0)
        with pytest.raises(RunFinalizedError, match="'r1'") as info:
            store.mark("r1", TaskRunRecord("a", TaskStatus.SUCCESS))
        assert isinstance(info.value, FlowrunError)
        with pytest.raises(RunFinalizedError):
            store.finalize("r1", RunStatus.SUCCESS, 102.0)

    def test_a_run_cannot_be_finalized_as_running(self) -> None:
        store = StateStore()
        store.create(new_run())
        with pytest.raises(ValueError, match="RUNNING"):
            store.finalize("r1", RunStatus.RUNNING, 101.0)

    def test_duplicate_run_id(self) -> None:
        store = StateStore()
        store.create(new_run())
        with pytest.raises(ValueError, match="'r1'"):
            store.create(new_run())

    def test_keeps_the_most_recent_finalized_runs(self) -> None:
        store = StateStore(max_runs=2)
        for i in range(4):
            store.create(new_run(f"r{i}"))
            store.finalize(f"r{i}", RunStatus.SUCCESS, 101.0)
        assert store.run_ids() == ["r2", "r3"]
        with pytest.raises(UnknownRunError):
            store.get("r0")

    def test_never_evicts_a_run_in_progress(self) -> None:
        store = StateStore(max_runs=1)
        store.create(new_run("running"))
        store.create(new_run("next"))
        assert store.run_ids() == ["running", "next"]

    @pytest.mark.parametrize("max_runs", [0, -1, 2.5])
    def test_bad_max_runs(self, max_runs: Any) -> None:
        with pytest.raises(InvalidOptionError, match="max_runs"):
            StateStore(max_runs=max_runs)

    def test_satisfies_the_protocol(self) -> None:
        assert isinstance(StateStore(), StateStoreProtocol)


class RecordingStore(StateStore):
    """A subclass that keeps every status change, as a persistent store would."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, str]] = []

    def mark(self, run_id: str, record: TaskRunRecord) -> None:
        self.log.append((record.name, str(record.status)))
        super().mark(run_id, record)

    def finalize(self, run_id: str, status: RunStatus, finished_at: float) -> None:
        self.log.append(("<run>", str(status)))
        super().finalize(run_id, status, finished_at)


class DictStore:
    """A store written from scratch against the protocol, not a subclass."""

    def __init__(self) -> None:
        self.runs: dict[str, RunRecord] = {}

    def create(self, run: RunRecord) -> None:
        self.runs[run.run_id] = run

    def get(self, run_id: str) -> RunRecord:
        try:
            return self.runs[run_id]
        except KeyError:
            raise UnknownRunError(run_id) from None

    def mark(self, run_id: str, record: TaskRunRecord) -> None:
        run = self.runs[run_id]
        self.runs[run_id] = RunRecord(
            run.run_id, run.dag_name, run.status, run.started_at, run.finished_at,
            {**run.tasks, record.name: record},
        )  # fmt: skip

    def finalize(self, run_id: str, status: RunStatus, finished_at: float) -> None:
        run = self.runs[run_id]
        self.runs[run_id] = RunRecord(
            run.run_id, run.dag_name, status, run.started_at, finished_at, run.tasks
        )


class FlakyStore(StateStore):
    """A store whose ``fail_on``-th ``mark`` raises, as a database might."""

    def __init__(self, fail_on: int) -> None:
        super().__init__()
        self.fail_on = fail_on
        self.marks = 0

    def mark(self, run_id: str, record: TaskRunRecord) -> None:
        self.marks += 1
        if self.marks == self.fail_on:
            raise OSError("database is locked")
        super().mark(run_id, record)


class TestInjectedStores:
    @pytest.mark.parametrize("fail_on", [1, 2, 3, 4])
    @pytest.mark.asyncio
    async def test_a_failing_store_fails_run_once_instead_of_hanging_it(
        self, registry: TaskRegistry, fail_on: int
    ) -> None:
        ran: list[str] = []

        @task(registry=registry)
        async def a() -> int:
            ran.append("a")
            return 1

        @task(deps=[a], registry=registry)
        def b() -> None:
            ran.append("b")

        store = FlakyStore(fail_on)
        engine = build_default_engine(registry=registry, state_store=store)
        with pytest.raises(OSError, match="database is locked"):
            await asyncio.wait_for(engine.run_once("d"), 5)
        assert ran == ["a", "b"]  # the run itself went on to the end
        assert engine.last_run_id is not None
        record = store.get(engine.last_run_id)
        assert record.finished_at is not None  # and was finalized

    @pytest.mark.asyncio
    async def test_a_subclass_sees_every_change(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def a() -> int:
            return 1

        @task(deps=[a], registry=registry)
        def b() -> None:
            raise RuntimeError("x")

        store = RecordingStore()
        engine = build_default_engine(registry=registry, state_store=store)
        run_id = await engine.run_once("d")
        assert store.log == [
            ("a", "RUNNING"),
            ("a", "SUCCESS"),
            ("b", "RUNNING"),
            ("b", "FAILED"),
            ("<run>", "FAILED"),
        ]
        assert engine.get_run_report(run_id)["status"] == "FAILED"

    @pytest.mark.asyncio
    async def test_any_store_with_the_interface_works(self, registry: TaskRegistry) -> None:
        task(name="t", registry=registry)(lambda: "v")
        store = DictStore()
        assert isinstance(store, StateStoreProtocol)
        engine = build_default_engine(registry=registry, state_store=store)
        report = engine.get_run_report(await engine.run_once("d"))
        assert (report["status"], report["tasks"]["t"]["result"]) == ("SUCCESS", "v")
        with pytest.raises(UnknownRunError):
            engine.get_run_report("missing")
