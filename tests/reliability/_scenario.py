"""Random DAG scenarios: plans, the tasks that act them out, and the guarantee checks.

A ``DagPlan`` says what every task will do (kind, outcome, duration, retries, timeout,
teardown); ``run_plan`` registers one closure per task, runs the DAG on a fresh engine,
optionally cancels ``run_once`` at a planned moment, and returns what happened. The task
bodies write their own ``EventLog`` (start, success, end, teardown...), under a lock and
with a global sequence number, so the checks in ``check_guarantees`` compare the report
and the state store with an account of events that does not come from flowrun.

Sync bodies that overrun their timeout are abandoned by flowrun (a thread cannot be
killed); they wait on ``EventLog.release``, which the runner sets once the run has
returned, so no thread outlives the example for long.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import flowrun.scheduler
from flowrun import (
    RunRecord,
    RunStatus,
    SchedulerConfig,
    StateStore,
    TaskFailedError,
    TaskRegistry,
    TaskRunRecord,
    TaskStatus,
    build_default_engine,
    task,
)

SYNC, ASYNC, SYNC_GEN, ASYNC_GEN = "sync", "async", "sync_gen", "async_gen"
KINDS = (SYNC, ASYNC, SYNC_GEN, ASYNC_GEN)
GENERATOR_KINDS = (SYNC_GEN, ASYNC_GEN)

OK, RAISE, FLAKY, TIMEOUT, HANG = "ok", "raise", "flaky", "timeout", "hang"
#: An async body that swallows the cancellation at its timeout and goes on regardless,
#: then ends normally: past flowrun's grace period (``GRACE_S`` in these tests) or not.
STUBBORN = "stubborn"
OUTCOMES = (OK, RAISE, FLAKY, TIMEOUT, HANG, STUBBORN)

#: How long a "hang" body would block if nothing released it.
HANG_S = 30.0
#: How far past its timeout a "timeout" body runs (a ratio: generous, so no flakiness).
OVERRUN = 10.0
#: Upper bound for a run_once call to return; a bug, not slowness, if exceeded.
RUN_LIMIT_S = 60.0
#: flowrun's CANCEL_GRACE_S during these runs, and how long a stubborn body keeps going
#: after swallowing its cancellation (a timer ordering, not a race: always after).
GRACE_S = 0.02
STUBBORN_S = 0.1


class InjectedError(Exception):
    """The error a planned failure raises."""


class InjectedTeardownError(Exception):
    """The error a planned teardown failure raises."""


class InjectedBaseError(BaseException):
    """A planned failure that is not an ``Exception`` (as a test framework's outcomes are)."""


class InjectedBaseTeardownError(BaseException):
    """A planned teardown failure that is not an ``Exception``."""


#: What a planned failure raises, body and teardown: an ``Exception``, a ``BaseException``
#: of our own, or ``SystemExit``. The runs set ``interrupt_exceptions=()``, so each of them
#: is a plain failure: retried, reported with its type, never a hang.
ERRORS: dict[str, tuple[type[BaseException], type[BaseException]]] = {
    "exception": (InjectedError, InjectedTeardownError),
    "base": (InjectedBaseError, InjectedBaseTeardownError),
    "system_exit": (SystemExit, SystemExit),
}


@dataclass(frozen=True, slots=True)
class TaskPlan:
    """What one task does on every attempt."""

    name: str
    deps: tuple[str, ...] = ()
    kind: str = ASYNC
    outcome: str = OK
    fail_times: int = 0
    duration_s: float = 0.0
    retries: int = 0
    retry_delay_s: float = 0.0
    timeout_s: float | None = None
    teardown: str = OK
    #: A key of ``ERRORS``: what its planned failures raise.
    errors: str = "exception"

    @property
    def abandoned_on_timeout(self) -> bool:
        """True if flowrun gives up on this body while it still runs: a sync body that
        overruns its timeout, or an async one that ignores the cancellation."""
        if self.outcome == STUBBORN:
            return True
        return self.kind in (SYNC, SYNC_GEN) and self.outcome in (TIMEOUT, HANG)

    def expected_own_status(self) -> TaskStatus:
        """The status the task ends in if all its parents succeed."""
        if self.outcome == OK:
            return TaskStatus.SUCCESS
        if self.outcome == FLAKY:
            return TaskStatus.SUCCESS if self.fail_times <= self.retries else TaskStatus.FAILED
        if self.outcome == RAISE:
            return TaskStatus.FAILED
        return TaskStatus.TIMED_OUT

    def expected_attempts(self) -> int:
        """Attempts the task makes if all its parents succeed."""
        if self.outcome == OK:
            return 1
        if self.outcome == FLAKY:
            return min(self.fail_times, self.retries) + 1
        return self.retries + 1


@dataclass(frozen=True, slots=True)
class DagPlan:
    """A whole scenario: tasks in a topological order, how to register and run them."""

    tasks: tuple[TaskPlan, ...]
    registration_order: tuple[int, ...] = ()
    max_parallel: int = 16
    default_timeout_s: float | None = None
    cancel_after_s: float | None = None
    #: A second cancellation, this long after the first (an impatient second Ctrl-C).
    second_cancel_after_s: float | None = None
    #: Run sync tasks in an injected ThreadPoolExecutor of this many workers.
    pool_workers: int | None = None
    #: Run through ``Engine.session`` and await these tasks' results one by one.
    awaits: tuple[str, ...] | None = None

    def by_name(self) -> dict[str, TaskPlan]:
        return {t.name: t for t in self.tasks}


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    kind: str
    task: str
    attempt: int
    detail: Any = None


class EventLog:
    """What the task bodies saw, in the order they saw it; written from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self.events: list[Event] = []
        self.release = threading.Event()
        self._attempts: dict[str, int] = {}

    def next_attempt(self, name: str) -> int:
        with self._lock:
            n = self._attempts[name] = self._attempts.get(name, 0) + 1
            return n

    def add(self, kind: str, name: str, attempt: int, detail: Any = None) -> None:
        with self._lock:
            self.events.append(Event(next(self._seq), kind, name, attempt, detail))

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)

    def open_bodies(self) -> list[tuple[str, int]]:
        """Bodies (task, attempt) and teardowns that started and have not ended yet."""
        opened: dict[tuple[str, str, int], int] = {}
        for e in self.snapshot():
            if e.kind in ("start", "td_start"):
                opened[(e.kind, e.task, e.attempt)] = e.seq
            elif e.kind == "end":
                opened.pop(("start", e.task, e.attempt), None)
            elif e.kind == "td_end":
                opened.pop(("td_start", e.task, e.attempt), None)
        return [(t, a) for (_, t, a) in opened]

    def wait_quiet(self, timeout_s: float) -> bool:
        """Wait until every body and teardown has ended (abandoned threads included)."""
        deadline = time.monotonic() + timeout_s
        while self.open_bodies():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True


# -- task bodies ------------------------------------------------------------------------


def _result(name: str) -> str:
    return f"{name}-result"


def _raise_injected(plan: TaskPlan, attempt: int) -> None:
    raise ERRORS[plan.errors][0](f"{plan.name} failed on attempt {attempt}")


def _fails(plan: TaskPlan, attempt: int) -> bool:
    return plan.outcome == RAISE or (plan.outcome == FLAKY and attempt <= plan.fail_times)


def _check_upstream(plan: TaskPlan, upstream: Mapping[str, Any]) -> bool:
    return dict(upstream) == {d: _result(d) for d in plan.deps}


def _sync_setup(plan: TaskPlan, log: EventLog, upstream: Mapping[str, Any]) -> tuple[int, str]:
    attempt = log.next_attempt(plan.name)
    log.add("start", plan.name, attempt, _check_upstream(plan, upstream))
    try:
        if plan.outcome == HANG:
            log.release.wait(HANG_S)
        elif plan.outcome == TIMEOUT:
            log.release.wait(max(plan.timeout_s or 0.0, 0.01) * OVERRUN)
        elif plan.duration_s:
            time.sleep(plan.duration_s)
        if _fails(plan, attempt):
            log.add("raise", plan.name, attempt)
            _raise_injected(plan, attempt)
        log.add("ok", plan.name, attempt)
        return attempt, _result(plan.name)
    finally:
        log.add("end", plan.name, attempt)


async def _async_setup(
    plan: TaskPlan, log: EventLog, upstream: Mapping[str, Any]
) -> tuple[int, str]:
    attempt = log.next_attempt(plan.name)
    log.add("start", plan.name, attempt, _check_upstream(plan, upstream))
    try:
        if plan.outcome == HANG:
            await asyncio.sleep(HANG_S)
        elif plan.outcome == STUBBORN:
            try:
                await asyncio.sleep(HANG_S)
            except asyncio.CancelledError:
                log.add("swallowed", plan.name, attempt)
                # Past the grace period on odd attempts, within it on even ones.
                await asyncio.sleep(STUBBORN_S if attempt % 2 else GRACE_S / 4)
        elif plan.outcome == TIMEOUT:
            await asyncio.sleep(max(plan.timeout_s or 0.0, 0.01) * OVERRUN)
        elif plan.duration_s:
            await asyncio.sleep(plan.duration_s)
        if _fails(plan, attempt):
            log.add("raise", plan.name, attempt)
            _raise_injected(plan, attempt)
        log.add("ok", plan.name, attempt)
        return attempt, _result(plan.name)
    except asyncio.CancelledError:
        log.add("cancelled", plan.name, attempt)
        raise
    finally:
        log.add("end", plan.name, attempt)


def _sync_teardown(plan: TaskPlan, log: EventLog, attempt: int) -> None:
    log.add("td_start", plan.name, attempt)
    try:
        if plan.teardown == HANG:
            log.release.wait(HANG_S)
        elif plan.duration_s:
            time.sleep(plan.duration_s)
        if plan.teardown == RAISE:
            log.add("td_raise", plan.name, attempt)
            raise ERRORS[plan.errors][1](f"{plan.name} teardown failed")
    finally:
        log.add("td_end", plan.name, attempt)


async def _async_teardown(plan: TaskPlan, log: EventLog, attempt: int) -> None:
    log.add("td_start", plan.name, attempt)
    try:
        if plan.teardown == HANG:
            await asyncio.sleep(HANG_S)
        elif plan.duration_s:
            await asyncio.sleep(plan.duration_s)
        if plan.teardown == RAISE:
            log.add("td_raise", plan.name, attempt)
            raise ERRORS[plan.errors][1](f"{plan.name} teardown failed")
    except asyncio.CancelledError:
        log.add("td_cancelled", plan.name, attempt)
        raise
    finally:
        log.add("td_end", plan.name, attempt)


def make_body(plan: TaskPlan, log: EventLog) -> Callable[..., Any]:
    """A fresh function acting out ``plan``, taking ``upstream``, of the planned kind."""
    if plan.kind == SYNC:

        def sync_body(upstream: dict[str, Any]) -> str:
            return _sync_setup(plan, log, upstream)[1]

        return sync_body
    if plan.kind == ASYNC:

        async def async_body(upstream: dict[str, Any]) -> str:
            return (await _async_setup(plan, log, upstream))[1]

        return async_body
    if plan.kind == SYNC_GEN:

        def sync_gen_body(upstream: dict[str, Any]) -> Iterator[str]:
            attempt, value = _sync_setup(plan, log, upstream)
            yield value
            # Plain code after the yield, not a finally: a generator closed without being
            # resumed (garbage collected) must not look torn down.
            _sync_teardown(plan, log, attempt)

        return sync_gen_body

    async def async_gen_body(upstream: dict[str, Any]) -> Any:
        attempt, value = await _async_setup(plan, log, upstream)
        yield value
        await _async_teardown(plan, log, attempt)

    return async_gen_body


# -- running ------------------------------------------------------------------------------


_MOVES: dict[TaskStatus, set[TaskStatus]] = {
    TaskStatus.PENDING: {TaskStatus.RUNNING, TaskStatus.SKIPPED, TaskStatus.CANCELLED},
    TaskStatus.RUNNING: {
        TaskStatus.RUNNING,  # the start time moves when a queued sync call starts
        TaskStatus.PENDING,  # a retry
        TaskStatus.SUCCESS,
        TaskStatus.FAILED,
        TaskStatus.TIMED_OUT,
        TaskStatus.CANCELLED,
    },
    TaskStatus.SUCCESS: {TaskStatus.SUCCESS},  # its teardown is recorded
    # A sync generator whose setup the cancellation waited for: its teardown is recorded.
    TaskStatus.CANCELLED: {TaskStatus.CANCELLED},
}


class CheckingStore(StateStore):
    """The in-memory store, noting every move of a task record that is not allowed: a
    terminal status never changes, attempts never go down, a teardown is recorded once."""

    def __init__(self) -> None:
        super().__init__()
        self.violations: list[str] = []
        self._last: dict[tuple[str, str], TaskRunRecord] = {}

    def create(self, run: RunRecord) -> None:
        super().create(run)
        for name, record in run.tasks.items():
            self._last[(run.run_id, name)] = record

    def mark(self, run_id: str, record: TaskRunRecord) -> None:
        old = self._last.get((run_id, record.name))
        if old is not None:
            if record.status not in _MOVES.get(old.status, set()):
                self.violations.append(f"{record.name}: {old.status} -> {record.status}")
            if record.attempts < old.attempts:
                self.violations.append(f"{record.name}: attempts went down")
            if old.status.is_terminal and record.teardown_status is None:
                self.violations.append(f"{record.name}: a final record changed")
            if old.teardown_status is not None:
                self.violations.append(f"{record.name}: changed after its teardown")
        super().mark(run_id, record)
        self._last[(run_id, record.name)] = record


@dataclass
class Outcome:
    """What a run left behind."""

    plan: DagPlan
    log: EventLog
    run_id: str | None
    record: RunRecord | None
    report: dict[str, Any] | None
    cancelled: bool
    store: CheckingStore = field(repr=False, default_factory=CheckingStore)
    #: What ``ActiveRun.result`` gave for each of ``plan.awaits``: a value or the error.
    results: dict[str, Any] = field(default_factory=dict)


def register_plan(plan: DagPlan, log: EventLog, registry: TaskRegistry) -> None:
    order = plan.registration_order or tuple(range(len(plan.tasks)))
    for i in order:
        t = plan.tasks[i]
        task(
            name=t.name,
            deps=list(t.deps),
            timeout_s=t.timeout_s,
            retries=t.retries,
            retry_delay_s=t.retry_delay_s,
            registry=registry,
        )(make_body(t, log))


async def run_plan(plan: DagPlan) -> Outcome:
    """Run ``plan`` once on a fresh engine; cancel ``run_once`` as planned.

    flowrun's grace period for code that ignores cancellation is shortened to ``GRACE_S``.
    """
    with mock.patch.object(flowrun.scheduler, "CANCEL_GRACE_S", GRACE_S):
        return await _run_plan(plan)


async def _run_plan(plan: DagPlan) -> Outcome:
    log = EventLog()
    registry = TaskRegistry()
    register_plan(plan, log, registry)
    store = CheckingStore()
    pool = ThreadPoolExecutor(plan.pool_workers) if plan.pool_workers is not None else None
    engine = build_default_engine(
        executor=pool,
        registry=registry,
        state_store=store,
        config=SchedulerConfig(
            max_parallel=plan.max_parallel,
            default_timeout_s=plan.default_timeout_s,
            interrupt_exceptions=(),
        ),
    )
    loop = asyncio.get_running_loop()
    results: dict[str, Any] = {}

    async def in_a_session(awaits: tuple[str, ...]) -> str:
        async with engine.session("random") as run:
            for name in awaits:
                try:
                    results[name] = await run.result(name)
                except TaskFailedError as exc:
                    results[name] = exc
        return run.run_id

    runner = loop.create_task(
        engine.run_once("random") if plan.awaits is None else in_a_session(plan.awaits)
    )
    timers = []
    if plan.cancel_after_s is not None:
        timers.append(loop.call_later(plan.cancel_after_s, runner.cancel))
        if plan.second_cancel_after_s is not None:
            second = plan.cancel_after_s + plan.second_cancel_after_s
            timers.append(loop.call_later(second, runner.cancel))
    try:
        done, _ = await asyncio.wait({runner}, timeout=RUN_LIMIT_S)
        if not done:
            runner.cancel()
            raise AssertionError(f"run_once did not return within {RUN_LIMIT_S}s")
        cancelled = runner.cancelled()
        if not cancelled:
            runner.result()  # raises whatever run_once raised: never expected here
    finally:
        for timer in timers:
            timer.cancel()
        log.release.set()
    # Abandoned bodies end in their own time; a stubborn async setup that yields after all
    # is torn down on this loop, so keep the loop running until everything has ended.
    for _ in range(2000):  # ten seconds at most
        if not log.open_bodies():
            break
        await asyncio.sleep(0.005)
    if pool is not None:
        # flowrun never shuts down an executor it was given: it still takes work.
        assert pool.submit(int).result(timeout=RUN_LIMIT_S) == 0
        pool.shutdown(wait=True)
    run_id = engine.last_run_id
    record = store.get(run_id) if run_id is not None else None
    report = engine.get_run_report(run_id) if run_id is not None else None
    return Outcome(plan, log, run_id, record, report, cancelled, store, results)


# -- checks -------------------------------------------------------------------------------

TERMINAL = {
    TaskStatus.SUCCESS,
    TaskStatus.FAILED,
    TaskStatus.TIMED_OUT,
    TaskStatus.SKIPPED,
    TaskStatus.CANCELLED,
}
FAILURES = {TaskStatus.FAILED, TaskStatus.TIMED_OUT}


def children_of(plan: DagPlan) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {t.name: [] for t in plan.tasks}
    for t in plan.tasks:
        for d in t.deps:
            children[d].append(t.name)
    return children


def expected_statuses(plan: DagPlan) -> dict[str, TaskStatus]:
    """The status of every task in a run that nobody cancels."""
    status: dict[str, TaskStatus] = {}
    for t in plan.tasks:
        if any(status[d] is not TaskStatus.SUCCESS for d in t.deps):
            status[t.name] = TaskStatus.SKIPPED
        else:
            status[t.name] = t.expected_own_status()
    return status


def check_guarantees(out: Outcome) -> None:
    """Assert guarantees 1-5 of the reliability issue on one finished (or cancelled) run."""
    plan, record, report = out.plan, out.record, out.report
    events = out.log.snapshot()
    names = [t.name for t in plan.tasks]
    plans = plan.by_name()
    children = children_of(plan)

    if record is None or report is None:
        # Cancelled before run_once created the run: nothing may have started.
        assert out.cancelled, "run_once returned without creating a run"
        assert not events, f"tasks ran in a run that was never created: {events[:5]}"
        return

    # 1. Terminal states, the same in the store and the report; the run is finalized; no
    # record ever left a terminal state.
    assert not out.store.violations, out.store.violations[:5]
    json.dumps(report)
    assert set(record.tasks) == set(names)
    assert set(report["tasks"]) == set(names)
    for name in names:
        stored = record.tasks[name]
        assert stored.status in TERMINAL, f"{name} left {stored.status}"
        assert report["tasks"][name]["status"] == stored.status.value
        assert stored.attempts == report["tasks"][name]["attempts"]
    assert record.status is not RunStatus.RUNNING
    assert record.finished_at is not None
    assert report["status"] == record.status.value
    assert sum(report["counts"].values()) == len(names)
    # Times in order: ready, started, finished, all within the run.
    assert record.started_at is not None
    assert record.started_at <= record.finished_at
    for name in names:
        rec = record.tasks[name]
        times = [t for t in (rec.ready_at, rec.started_at, rec.finished_at) if t is not None]
        assert times == sorted(times), f"{name}: times out of order {times}"
        assert all(record.started_at <= t <= record.finished_at for t in times), name
        if rec.started_at is not None and rec.status.is_terminal:
            assert rec.status is TaskStatus.CANCELLED or rec.finished_at is not None, name

    statuses = {name: record.tasks[name].status for name in names}
    teardown_status = {name: record.tasks[name].teardown_status for name in names}
    if out.cancelled:
        assert record.status is RunStatus.CANCELLED
    else:
        any_failure = any(s in FAILURES for s in statuses.values()) or any(
            s is not None and s is not TaskStatus.SUCCESS for s in teardown_status.values()
        )
        expected_run = RunStatus.FAILED if any_failure else RunStatus.SUCCESS
        assert record.status is expected_run, (record.status, expected_run)
        assert TaskStatus.CANCELLED not in statuses.values()

    # The model: without cancellation every status is exactly predictable; with it, a task
    # may also be CANCELLED (or SKIPPED by a failure that happened before the cancel).
    expected = expected_statuses(plan)
    for name in names:
        got, want = statuses[name], expected[name]
        if out.cancelled:
            allowed = {want, TaskStatus.CANCELLED, TaskStatus.SKIPPED}
            stubborn = plans[name].outcome == STUBBORN and want is not TaskStatus.SKIPPED
            if stubborn:
                # It swallows the run's cancellation too, and may then end within its own
                # timeout and the grace period: it did succeed, and is recorded so.
                allowed.add(TaskStatus.SUCCESS)
            assert got in allowed, (name, got, want)
            # A cancellation stops retries: fewer attempts, never more; a success is exact.
            attempts = record.tasks[name].attempts
            assert attempts <= plans[name].expected_attempts(), name
            if got is TaskStatus.SUCCESS and not stubborn:
                assert attempts == plans[name].expected_attempts(), name
        else:
            assert got is want, f"{name}: {got} != expected {want}"
            if got is not TaskStatus.SKIPPED:
                assert record.tasks[name].attempts == plans[name].expected_attempts(), name

    # 2. Order, from the event log: parents succeeded before a child started; no SKIPPED
    # task ran; skips name a failed ancestor; bodies got their parents' results.
    seq_ok: dict[str, int] = {}
    starts: dict[str, list[Event]] = {n: [] for n in names}
    for e in events:
        if e.kind == "ok" and e.task not in seq_ok:
            seq_ok[e.task] = e.seq
        if e.kind == "start":
            starts[e.task].append(e)
            assert e.detail is True, f"{e.task} got wrong upstream results"
            for d in plans[e.task].deps:
                assert statuses[d] is TaskStatus.SUCCESS, f"{e.task} ran though {d} did not succeed"
                assert d in seq_ok, f"{e.task} started though {d} never succeeded"
                assert seq_ok[d] < e.seq, f"{e.task} started before {d} succeeded"
    for name in names:
        rec = record.tasks[name]
        entry = report["tasks"][name]
        if rec.status is TaskStatus.SKIPPED:
            assert not starts[name], f"SKIPPED task {name} ran"
            assert rec.attempts == 0
            assert rec.started_at is None
            cause = rec.skipped_because
            assert cause is not None, f"SKIPPED task {name} names no cause"
            # The skip spread from the failed task through its children: a parent is the
            # cause, or was skipped because of it too (so the cause is an ancestor).
            assert any(
                d == cause or record.tasks[d].skipped_because == cause for d in plans[name].deps
            ), f"{name} skipped because of {cause}, which is not a failed ancestor"
            assert statuses[cause] in FAILURES, f"{name} skipped because of {cause}"
            assert entry["skipped_because"] == cause
        else:
            assert rec.skipped_because is None
        if rec.started_at is None:
            assert not starts[name], f"{name} ran but has no start time"
        # A body starts at most once per attempt; async bodies start on every attempt.
        assert len(starts[name]) <= rec.attempts, name
        if plans[name].kind in (ASYNC, ASYNC_GEN) and rec.status is not TaskStatus.CANCELLED:
            assert len(starts[name]) == rec.attempts, name
        if rec.status is TaskStatus.SUCCESS:
            assert entry["result"] == _result(name)
            assert name in seq_ok

    # 4. No lost errors: each failure's type, message and traceback.
    for name in names:
        rec = record.tasks[name]
        error = report["tasks"][name]["error"]
        if rec.status is TaskStatus.FAILED:
            assert error is not None, f"{name} FAILED without an error"
            kind = ERRORS[plans[name].errors][0].__qualname__
            assert error["type"] == kind
            assert error["message"] == f"{name} failed on attempt {rec.attempts}"
            assert kind in error["traceback"]
            assert "_raise_injected" in error["traceback"]
        elif rec.status is TaskStatus.TIMED_OUT:
            assert error is not None
            assert error["type"] == "TaskTimeoutError"
            assert repr(name) in error["message"]
            assert "TaskTimeoutError" in error["traceback"]
        elif rec.status in (TaskStatus.SUCCESS, TaskStatus.SKIPPED):
            assert error is None, (name, error)

    # 3. Limits: bodies running at once (setup and teardown alike) never exceed
    # max_parallel. A sync body flowrun abandoned (timed out, or cancelled with the run)
    # keeps its thread but not its slot, so it is not counted once it may be abandoned;
    # the log marks starts after the slot is taken and ends before it is freed. Likewise
    # the teardown an abandoned setup runs in its own thread once it reaches its yield.
    def abandoned(name: str) -> bool:
        p = plans[name]
        if p.abandoned_on_timeout:
            return True
        return statuses[name] is TaskStatus.CANCELLED and p.kind in (SYNC, SYNC_GEN)

    def teardown_abandoned(name: str) -> bool:
        return teardown_status[name] in (TaskStatus.TIMED_OUT, TaskStatus.CANCELLED)

    live: set[tuple[str, str, int]] = set()
    peak = 0
    for e in events:
        if e.kind == "start" and not abandoned(e.task):
            live.add(("body", e.task, e.attempt))
        elif e.kind == "end":
            live.discard(("body", e.task, e.attempt))
        elif e.kind == "td_start" and not teardown_abandoned(e.task) and not abandoned(e.task):
            live.add(("td", e.task, e.attempt))
        elif e.kind == "td_end":
            live.discard(("td", e.task, e.attempt))
        peak = max(peak, len(live))
        assert len(live) <= plan.max_parallel, f"{len(live)} bodies running: {sorted(live)}"

    # 5. Cleanup: every generator task whose setup succeeded is torn down exactly once,
    # after every task that depends on it, directly or not (bodies and their teardowns).
    td_starts: dict[str, list[Event]] = {n: [] for n in names}
    body_end: dict[str, int] = {}
    td_end: dict[str, int] = {}
    for e in events:
        if e.kind == "td_start":
            td_starts[e.task].append(e)
        elif e.kind == "end":
            body_end[e.task] = e.seq
        elif e.kind == "td_end":
            td_end[e.task] = e.seq
    # The last event of each task's own code that flowrun waits for (body, teardown), and
    # the latest such event among everything below it. An abandoned sync body, or the
    # teardown an abandoned setup runs in its thread, ends whenever its thread gets there.
    own_last: dict[str, int] = {}
    for name in names:
        last = -1
        if name in body_end and not abandoned(name):
            last = body_end[name]
        if name in td_end and not teardown_abandoned(name) and not abandoned(name):
            last = max(last, td_end[name])
        own_last[name] = last
    latest_below: dict[str, int] = {}
    for name in reversed(names):  # children before parents
        latest_below[name] = max(
            (max(own_last[c], latest_below[c]) for c in children[name]), default=-1
        )
    for name in names:
        p, rec = plans[name], record.tasks[name]
        # Set up: it succeeded, or it is a sync generator whose setup was running in its
        # thread when the run was cancelled, was waited for, and must be undone in order.
        set_up = rec.status is TaskStatus.SUCCESS or (
            rec.status is TaskStatus.CANCELLED
            and p.kind == SYNC_GEN
            and rec.teardown_status is not None
        )
        if p.kind not in GENERATOR_KINDS or not set_up:
            assert rec.teardown_status is None, (name, rec.status, rec.teardown_status)
            continue
        assert rec.teardown_status is not None, f"{name} set up but never torn down"
        entry = report["tasks"][name]["teardown"]
        assert entry is not None
        assert entry["status"] == rec.teardown_status.value
        # The teardowns of the attempt that succeeded (the last one); an earlier attempt
        # that set up late is undone on its own (see check_abandoned_setups_cleaned).
        mine = [e for e in td_starts[name] if e.attempt == rec.attempts]
        if rec.teardown_status is TaskStatus.CANCELLED:
            # Only a second cancellation may cut teardown short: one cancellation, wherever
            # it lands, still tears everything down.
            assert plan.second_cancel_after_s is not None, f"{name}: teardown cut short"
            assert out.cancelled, f"{name}: teardown cut short without a cancellation"
            assert len(mine) <= 1
            continue
        assert len(mine) == 1, f"{name} torn down {len(mine)} times"
        start = mine[0].seq
        assert latest_below[name] < start, f"{name} torn down before a task below it ended"
        if p.teardown == RAISE:
            assert rec.teardown_status is TaskStatus.FAILED
            kind = ERRORS[p.errors][1].__qualname__
            assert entry["error"]["type"] == kind
            assert entry["error"]["message"] == f"{name} teardown failed"
            assert kind in entry["error"]["traceback"]
        elif p.teardown == HANG:
            assert rec.teardown_status is TaskStatus.TIMED_OUT
            assert entry["error"]["type"] == "TaskTimeoutError"
        else:
            assert rec.teardown_status is TaskStatus.SUCCESS, (name, rec.teardown_status)


def check_abandoned_setups_cleaned(out: Outcome, timeout_s: float = 10.0) -> None:
    """After release: every body ended, and every generator that reached its ``yield``
    (even one flowrun had given up on) ran its teardown exactly once."""
    assert out.log.wait_quiet(timeout_s), f"bodies never ended: {out.log.open_bodies()[:5]}"
    plans = out.plan.by_name()

    def tally() -> tuple[set[tuple[str, int]], dict[tuple[str, int], int]]:
        yielded: set[tuple[str, int]] = set()
        torn: dict[tuple[str, int], int] = {}
        for e in out.log.snapshot():
            if e.kind == "ok" and plans[e.task].kind in GENERATOR_KINDS:
                yielded.add((e.task, e.attempt))
            elif e.kind == "td_end":
                torn[(e.task, e.attempt)] = torn.get((e.task, e.attempt), 0) + 1
        return yielded, torn

    def given_up(key: tuple[str, int]) -> bool:
        """True unless this is the attempt the run recorded as its successful setup (whose
        teardown the run itself does, checked in check_guarantees)."""
        name, attempt = key
        if out.record is None:
            return True
        rec = out.record.tasks[name]
        return rec.status is not TaskStatus.SUCCESS or attempt != rec.attempts

    # An abandoned setup tears itself down in its thread right after its yield: the body's
    # "end" is logged just before, so give the thread a moment to get there.
    deadline = time.monotonic() + timeout_s
    while True:
        yielded, torn = tally()
        owed = {key for key in yielded if given_up(key) and key not in torn}
        if not owed or time.monotonic() > deadline:
            break
        time.sleep(0.002)
    assert not owed, f"abandoned setups never torn down: {sorted(owed)[:5]}"
    for key, count in torn.items():
        assert count == 1, f"teardown of {key} ran {count} times"
        assert key in yielded, f"teardown of {key} ran without a setup"


def check_results(out: Outcome) -> None:
    """``ActiveRun.result`` gave each awaited task's value, or a ``TaskFailedError`` naming
    the task, its final status and the task that actually failed."""
    assert out.record is not None
    assert set(out.results) == set(out.plan.awaits or ())
    for name, got in out.results.items():
        rec = out.record.tasks[name]
        if rec.status is TaskStatus.SUCCESS:
            assert got == _result(name)
            continue
        assert isinstance(got, TaskFailedError), (name, rec.status, got)
        assert got.task == name
        assert got.status is rec.status
        cause = rec.skipped_because or name
        assert got.cause == cause
        assert repr(name) in str(got)
        if out.record.tasks[cause].error is not None:
            assert got.error == out.record.tasks[cause].error
