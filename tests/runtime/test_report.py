"""``Engine.get_run_report``: a plain JSON-serialisable dict with every task of the DAG."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from flowrun._report import _critical_path, _iso, build_report
from flowrun.engine import Engine, build_default_engine
from flowrun.state import RunRecord, RunStatus, StateStore, TaskError, TaskRunRecord, TaskStatus
from flowrun.task import TaskRegistry, task

RUN_KEYS = {"run_id", "dag", "status", "started_at", "finished_at", "duration_s", "tasks"}
TASK_KEYS = {
    "status",
    "started_at",
    "finished_at",
    "duration_s",
    "queued_s",
    "attempts",
    "result",
    "error",
    "skipped_because",
    "teardown",
}


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque thing>"


class Unrepresentable:
    def __repr__(self) -> str:
        raise RuntimeError("repr is broken")


@pytest.mark.asyncio
async def test_every_task_is_in_a_json_serialisable_report(
    registry: TaskRegistry, engine: Engine
) -> None:
    @task(registry=registry)
    async def ok() -> dict[str, Any]:
        return {"rows": [1, 2.5, None, True], "pair": (1, 2)}

    @task(registry=registry)
    def opaque() -> Opaque:
        return Opaque()

    @task(registry=registry)
    def fails() -> None:
        raise ValueError("no")

    @task(deps=[fails], registry=registry)
    def skipped() -> None: ...

    run_id = await engine.run_once("everything")
    report = engine.get_run_report(run_id)
    assert json.loads(json.dumps(report)) == report  # plain data, round-trips exactly
    assert set(report) >= RUN_KEYS
    assert list(report["tasks"]) == ["ok", "opaque", "fails", "skipped"]
    for entry in report["tasks"].values():
        assert set(entry) >= TASK_KEYS
    tasks = report["tasks"]
    assert tasks["ok"]["result"] == {"rows": [1, 2.5, None, True], "pair": [1, 2]}
    assert tasks["opaque"]["result"] == "<Opaque thing>"
    assert tasks["fails"]["error"]["type"] == "ValueError"
    assert tasks["skipped"]["skipped_because"] == "fails"
    assert tasks["skipped"]["started_at"] is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({1: "int keys"}, "{1: 'int keys'}"),
        (float("nan"), "nan"),
        ({"a", "set"}, None),
        (b"bytes", "b'bytes'"),
    ],
    ids=["int-keys", "nan", "set", "bytes"],
)
@pytest.mark.asyncio
async def test_non_json_results_become_their_repr(
    registry: TaskRegistry, engine: Engine, value: object, expected: str | None
) -> None:
    task(name="t", registry=registry)(lambda: value)
    report = engine.get_run_report(await engine.run_once("d"))
    json.dumps(report, allow_nan=False)
    assert report["tasks"]["t"]["result"] == (expected if expected is not None else repr(value))


@pytest.mark.asyncio
async def test_a_long_repr_is_cut(registry: TaskRegistry, engine: Engine) -> None:
    task(name="t", registry=registry)(lambda: {"x": Opaque(), "y": "y" * 5000})
    result = engine.get_run_report(await engine.run_once("d"))["tasks"]["t"]["result"]
    assert isinstance(result, str)
    assert result.startswith("{'x': <Opaque thing>, 'y': 'yyy")
    assert len(result) <= 2000


@pytest.mark.asyncio
async def test_a_result_whose_repr_fails_still_reports(
    registry: TaskRegistry, engine: Engine
) -> None:
    task(name="t", registry=registry)(Unrepresentable)
    report = engine.get_run_report(await engine.run_once("d"))
    json.dumps(report)
    assert report["tasks"]["t"]["status"] == "SUCCESS"
    assert "Unrepresentable" in report["tasks"]["t"]["result"]


@pytest.mark.asyncio
async def test_timestamps_and_durations(registry: TaskRegistry, engine: Engine) -> None:
    @task(registry=registry)
    async def first() -> None:
        await asyncio.sleep(0.02)

    @task(deps=[first], registry=registry)
    async def second() -> None:
        await asyncio.sleep(0.02)

    report = engine.get_run_report(await engine.run_once("d"))
    run_start = datetime.fromisoformat(report["started_at"])
    run_end = datetime.fromisoformat(report["finished_at"])
    assert run_start.tzinfo is not None
    first_t, second_t = report["tasks"]["first"], report["tasks"]["second"]
    times = [
        run_start,
        datetime.fromisoformat(first_t["started_at"]),
        datetime.fromisoformat(first_t["finished_at"]),
        datetime.fromisoformat(second_t["started_at"]),
        datetime.fromisoformat(second_t["finished_at"]),
        run_end,
    ]
    assert times == sorted(times)
    assert report["duration_s"] == pytest.approx((run_end - run_start).total_seconds(), abs=1e-3)
    # The run lasts at least as long as its two chained tasks.
    assert report["duration_s"] >= first_t["duration_s"] + second_t["duration_s"]
    assert first_t["attempts"] == second_t["attempts"] == 1


@pytest.mark.asyncio
async def test_a_report_mid_run_shows_every_task(registry: TaskRegistry, engine: Engine) -> None:
    gate = asyncio.Event()

    @task(registry=registry)
    async def waiting() -> None:
        await gate.wait()

    @task(deps=[waiting], registry=registry)
    def later() -> None: ...

    async with engine.session("d") as run:
        await asyncio.sleep(0.01)
        report = engine.get_run_report(run.run_id)
        json.dumps(report)
        assert report["status"] == "RUNNING"
        assert report["finished_at"] is None
        assert report["tasks"]["waiting"]["status"] == "RUNNING"
        assert report["tasks"]["later"]["status"] == "PENDING"
        gate.set()
    assert engine.get_run_report(run.run_id)["tasks"]["later"]["status"] == "SUCCESS"


@pytest.mark.asyncio
async def test_an_unprintable_error_still_reports(registry: TaskRegistry, engine: Engine) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("str is broken")

    @task(registry=registry)
    def raises() -> None:
        raise Unprintable

    @task(deps=[raises], registry=registry)
    def child() -> None: ...

    run_id = await asyncio.wait_for(engine.run_once("d"), 5)
    report = engine.get_run_report(run_id)
    json.dumps(report)
    assert report["tasks"]["raises"]["status"] == "FAILED"
    assert report["tasks"]["raises"]["error"]["type"].endswith("Unprintable")
    assert report["tasks"]["child"]["status"] == "SKIPPED"


class ReversingStore(StateStore):
    """A store that hands tasks back in reverse order, as a database might (no ORDER BY)."""

    def get(self, run_id: str) -> RunRecord:
        run = super().get(run_id)
        return replace(run, tasks=dict(reversed(list(run.tasks.items()))))


@pytest.mark.asyncio
async def test_critical_path_does_not_depend_on_the_order_the_store_keeps(
    registry: TaskRegistry,
) -> None:
    @task(registry=registry)
    async def first() -> None:
        await asyncio.sleep(0.03)

    @task(deps=[first], registry=registry)
    async def second() -> None:
        await asyncio.sleep(0.03)

    @task(registry=registry)
    async def aside() -> None:
        await asyncio.sleep(0.001)

    engine = build_default_engine(registry=registry, state_store=ReversingStore())
    report = engine.get_run_report(await engine.run_once("d"))
    assert list(report["tasks"]) == ["aside", "second", "first"]
    assert report["critical_path"] == ["first", "second"]
    tasks = report["tasks"]
    expected = tasks["first"]["duration_s"] + tasks["second"]["duration_s"]
    assert report["critical_path_s"] == pytest.approx(expected)


def _random_run(seed: int, durations: Sequence[float], never_started: float) -> RunRecord:
    """A finished run of 60 tasks, parents first, with random dependencies, durations
    drawn from ``durations`` and that share of tasks never started."""
    rng = random.Random(seed)
    records: dict[str, TaskRunRecord] = {}
    for i in range(60):
        deps = tuple(f"t{p}" for p in rng.sample(range(i), min(i, rng.randint(0, 3))))
        started = None if rng.random() < never_started else 100.0 + i
        duration = rng.choice(durations)
        records[f"t{i}"] = TaskRunRecord(
            name=f"t{i}",
            status=TaskStatus.SUCCESS if started is not None else TaskStatus.SKIPPED,
            deps=deps,
            started_at=started,
            finished_at=None if started is None else started + duration,
        )
    return RunRecord(run_id="r", dag_name="d", status=RunStatus.SUCCESS, tasks=records)


@pytest.mark.parametrize("seed", range(20))
def test_critical_path_is_the_same_whatever_the_order_of_the_records(seed: int) -> None:
    run = _random_run(
        seed, [1.0 + 2.0**-k for k in range(30)], 0.0
    )  # ties unlikely, and none in these seeds
    parents_first = build_report(run)
    shuffled = list(run.tasks.items())
    random.Random(seed).shuffle(shuffled)
    for order in (list(reversed(run.tasks.items())), shuffled):
        other = build_report(replace(run, tasks=dict(order)))
        assert other["critical_path"] == parents_first["critical_path"]
        assert other["critical_path_s"] == parents_first["critical_path_s"]
    # and it is a chain of dependencies as heavy as its durations add up to
    path = parents_first["critical_path"]
    for parent, child in itertools.pairwise(path):
        assert parent in run.tasks[child].deps
    durations = [parents_first["tasks"][n]["duration_s"] or 0.0 for n in path]
    assert parents_first["critical_path_s"] == pytest.approx(sum(durations))


@pytest.mark.parametrize("seed", range(20))
def test_critical_path_ties_go_to_the_order_of_the_records(seed: int) -> None:
    # Built in the report's pass over records that come parents first, and by sorting
    # them otherwise: both must pick the same one of several equally heavy paths.
    run = _random_run(seed, [1.0, 1.0, 2.0], 0.1)
    report = build_report(run)
    durations = {n: t["duration_s"] for n, t in report["tasks"].items() if t["duration_s"]}
    assert (report["critical_path"], report["critical_path_s"]) == _critical_path(run, durations)


def _timestamps() -> list[Any]:
    rng = random.Random(11)
    stamps: list[Any] = [0.0, 1.0, 1_700_000_000, 1_700_000_000.5, 86_399.9999995]
    # the edges of the fast path (floats from 1 s to 10^11 s) and what lies beyond them
    stamps += [0.9999995, 0.25, -1.5, -0.0000004, 1e11 - 0.4999995, 1e11, 1e11 + 0.5]
    for _ in range(20_000):
        whole = rng.choice([0, 86_399, 1_000_000_000, 1_700_000_000, 2_500_000_000])
        fraction = rng.choice(
            [
                rng.random(),
                rng.randrange(1_000_000) / 1e6,
                (rng.randrange(1_000_000) + 0.5) / 1e6,  # a tie at the microsecond
                1 - rng.random() * 1e-6,  # rounds up into the next second
            ]
        )
        stamps.append(whole + fraction)
    return stamps


def test_timestamps_are_formatted_exactly_as_datetime_does() -> None:
    for stamp in _timestamps():
        assert _iso(stamp) == datetime.fromtimestamp(stamp, UTC).isoformat(), stamp
    assert _iso(None) is None


def test_every_field_of_every_record_reaches_the_report() -> None:
    error = TaskError("ValueError", "no", "Traceback ...")
    records = {
        "a": TaskRunRecord("a", TaskStatus.SUCCESS, (), 1, 10.0, 10.5, 12.0, {"k": [1]}),
        "b": TaskRunRecord(
            "b",
            TaskStatus.FAILED,
            ("a", "gone"),
            2,
            12.0,
            12.25,
            13.0,
            None,
            error,
            teardown_status=TaskStatus.FAILED,
            teardown_s=0.5,
            teardown_error=error,
            teardown_started_at=13.5,
        ),
        "c": TaskRunRecord("c", TaskStatus.SKIPPED, ("b",), skipped_because="b"),
        "d": TaskRunRecord("d", TaskStatus.CANCELLED, (), 0, 11.0),
    }
    run = RunRecord(
        "r1",
        "dag",
        RunStatus.FAILED,
        10.0,
        14.0,
        records,
        executor="ClientExecutor",
        resources={"docker": 2, "db": 1},
        task_resources={"b": {"docker": 1, "db": 1}},
    )
    report = build_report(run)
    assert report["counts"] == {
        "PENDING": 0,
        "RUNNING": 0,
        "SUCCESS": 1,
        "FAILED": 1,
        "TIMED_OUT": 0,
        "SKIPPED": 1,
        "CANCELLED": 1,
    }
    assert (report["serial_s"], report["setup_span_s"]) == (2.25, 2.5)
    assert (report["critical_path"], report["critical_path_s"]) == (["a", "b"], 2.25)
    b = report["tasks"]["b"]
    assert b == {
        "status": "FAILED",
        "deps": ["a", "gone"],
        "attempts": 2,
        "ready_at": _iso(12.0),
        "started_at": _iso(12.25),
        "finished_at": _iso(13.0),
        "offset_s": 2.25,
        "queued_s": 0.25,
        "duration_s": 0.75,
        "result": None,
        "error": {"type": "ValueError", "message": "no", "traceback": "Traceback ..."},
        "skipped_because": None,
        "teardown": {
            "status": "FAILED",
            "duration_s": 0.5,
            "error": {"type": "ValueError", "message": "no", "traceback": "Traceback ..."},
            "offset_s": 3.5,
        },
        "resources": {"docker": 1, "db": 1},
    }
    assert report["tasks"]["a"]["resources"] == {}
    assert report["executor"] == "ClientExecutor"
    assert report["resources"] == {"docker": 2, "db": 1}
    assert report["tasks"]["a"]["result"] == {"k": [1]}
    assert report["tasks"]["c"]["skipped_because"] == "b"
    assert report["tasks"]["d"]["offset_s"] is None
    assert report["tasks"]["d"]["queued_s"] is None
    assert json.loads(json.dumps(report)) == report


@pytest.mark.asyncio
async def test_teardowns_have_their_start_offset(registry: TaskRegistry, engine: Engine) -> None:
    @task(registry=registry)
    async def db():  # type: ignore[no-untyped-def]
        yield "db"
        await asyncio.sleep(0.05)

    @task(deps=[db], registry=registry)
    def app(db: str):  # type: ignore[no-untyped-def]
        yield "app"
        time.sleep(0.05)

    @task(registry=registry)
    def plain() -> int:
        return 1

    report = engine.get_run_report(await engine.run_once("teardowns"))
    tasks = report["tasks"]
    assert tasks["plain"]["teardown"] is None
    app_down, db_down = tasks["app"]["teardown"], tasks["db"]["teardown"]
    setup_end = max(t["offset_s"] + t["duration_s"] for t in tasks.values())
    # Dependants first: db's teardown starts once app's has ended.
    assert setup_end <= app_down["offset_s"]
    assert app_down["offset_s"] + app_down["duration_s"] <= db_down["offset_s"] + 0.01
    assert db_down["offset_s"] + db_down["duration_s"] <= report["duration_s"] + 0.01
