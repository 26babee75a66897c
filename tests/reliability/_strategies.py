"""Hypothesis strategies for random DAG scenarios (see ``_scenario``)."""

from __future__ import annotations

from hypothesis import strategies as st

from ._scenario import (
    ASYNC,
    ASYNC_GEN,
    FLAKY,
    GENERATOR_KINDS,
    HANG,
    KINDS,
    OK,
    RAISE,
    STUBBORN,
    TIMEOUT,
    DagPlan,
    TaskPlan,
)

#: Mostly successes, so failures have descendants to skip and independent branches to spare.
_OUTCOMES = [OK] * 6 + [RAISE, FLAKY, TIMEOUT, HANG, STUBBORN]
_TEARDOWNS = [OK] * 8 + [RAISE, HANG]
#: What failures raise (keys of ``ERRORS``): mostly exceptions, sometimes BaseExceptions.
_ERRORS = ["exception"] * 4 + ["base", "system_exit"]
#: Timeouts of overrunning tasks: short, since flowrun does not wait for them.
_SHORT_TIMEOUTS = [0.01, 0.02, 0.03]
#: A timeout that a few-millisecond body never reaches, so teardown hangs are bounded.
TEARDOWN_TIMEOUT_S = 0.15


@st.composite
def task_plans(draw: st.DrawFn, name: str, deps: tuple[str, ...], *, hang: bool = True) -> TaskPlan:
    kind = draw(st.sampled_from(KINDS))
    outcome = draw(st.sampled_from(_OUTCOMES))
    teardown = draw(st.sampled_from(_TEARDOWNS)) if kind in GENERATOR_KINDS else OK
    if outcome == STUBBORN and kind not in (ASYNC, ASYNC_GEN):
        outcome = TIMEOUT  # only async code can ignore a cancellation
    if not hang:  # a hung thread would hold a worker of a bounded pool until the end
        outcome = TIMEOUT if outcome == HANG else outcome
        teardown = OK if teardown == HANG else teardown
    timeout_s: float | None
    if outcome in (TIMEOUT, HANG, STUBBORN):
        timeout_s = draw(st.sampled_from(_SHORT_TIMEOUTS))
    elif teardown == HANG:
        timeout_s = TEARDOWN_TIMEOUT_S
    else:
        timeout_s = draw(st.sampled_from([None, 5.0]))
    if teardown == HANG and timeout_s is not None and timeout_s < TEARDOWN_TIMEOUT_S:
        teardown = OK  # a short timeout is for the setup to overrun; keep teardown simple
    return TaskPlan(
        name=name,
        deps=deps,
        kind=kind,
        outcome=outcome,
        fail_times=draw(st.integers(1, 3)) if outcome == FLAKY else 0,
        duration_s=draw(st.sampled_from([0.0, 0.001, 0.002, 0.004])),
        retries=draw(st.integers(0, 2)),
        retry_delay_s=draw(st.sampled_from([0.0, 0.0, 0.001, 0.003])),
        timeout_s=timeout_s,
        teardown=teardown,
        errors=draw(st.sampled_from(_ERRORS)),
    )


@st.composite
def dag_plans(
    draw: st.DrawFn,
    *,
    max_tasks: int = 60,
    cancel: bool = False,
    twice: bool = False,
    pool: bool = False,
    session: bool = False,
) -> DagPlan:
    """A DAG of 0..max_tasks tasks; edges only point back, so it is acyclic by construction."""
    n = draw(st.integers(0, max_tasks))
    tasks: list[TaskPlan] = []
    for i in range(n):
        parents = (
            draw(st.lists(st.integers(0, i - 1), max_size=min(i, 3), unique=True)) if i else []
        )
        deps = tuple(f"t{p}" for p in parents)
        tasks.append(draw(task_plans(f"t{i}", deps, hang=not pool)))
    order = tuple(draw(st.permutations(range(n))))
    return DagPlan(
        tasks=tuple(tasks),
        registration_order=order,
        max_parallel=draw(st.sampled_from([1, 2, 3, 4, 8, 64])),
        default_timeout_s=draw(st.sampled_from([None, 10.0])),
        cancel_after_s=draw(st.floats(0.0, 0.06)) if cancel or twice else None,
        second_cancel_after_s=draw(st.floats(0.0, 0.03)) if twice else None,
        pool_workers=draw(st.sampled_from([2, 4, 8])) if pool else None,
        awaits=tuple(draw(st.lists(st.sampled_from([t.name for t in tasks]), max_size=8)))
        if session and tasks
        else (() if session else None),
    )
