"""The cheap record and outcome constructors build exactly what the dataclass inits do."""

from __future__ import annotations

import dataclasses

import pytest

from flowrun.state import TaskError, TaskRunRecord, TaskStatus, _task_record


def test_every_field_is_filled_like_the_dataclass_init() -> None:
    error = TaskError("ValueError", "boom", "Traceback ...")
    values = dict(
        name="load",
        status=TaskStatus.FAILED,
        deps=("a", "b"),
        attempts=2,
        ready_at=1.0,
        started_at=2.0,
        finished_at=3.5,
        result={"rows": 3},
        error=error,
        skipped_because="a",
        teardown_status=TaskStatus.SUCCESS,
        teardown_s=0.25,
        teardown_error=None,
        teardown_started_at=4.0,
    )
    assert set(values) == {f.name for f in dataclasses.fields(TaskRunRecord)}
    fast = _task_record(**values)  # type: ignore[arg-type]
    slow = TaskRunRecord(**values)  # type: ignore[arg-type]
    assert type(fast) is TaskRunRecord
    assert fast == slow
    assert hash(fast.deps) == hash(slow.deps)
    assert repr(fast) == repr(slow)
    assert dataclasses.asdict(fast) == dataclasses.asdict(slow)


def test_defaults_match() -> None:
    assert _task_record("t", TaskStatus.PENDING, ()) == TaskRunRecord("t")


def test_the_record_is_frozen() -> None:
    record = _task_record("t", TaskStatus.RUNNING, ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = TaskStatus.SUCCESS  # type: ignore[misc]
    assert dataclasses.replace(record, attempts=1).attempts == 1


def test_the_executor_builds_success_outcomes_like_the_dataclass_init() -> None:
    from flowrun.executor import AttemptOutcome, _success

    value = {"rows": 3}
    outcome = _success(value)
    assert type(outcome) is AttemptOutcome
    assert outcome == AttemptOutcome(TaskStatus.SUCCESS, value)
    assert outcome.value is value
    assert (outcome.error, outcome.handle) == (None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.value = 1  # type: ignore[misc]
