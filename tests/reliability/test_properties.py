"""Property tests: random DAGs with injected failures keep every guarantee.

Each example builds a DAG of 0-60 sync, async and generator tasks that succeed, raise,
fail a few times then succeed, overrun their timeout, hang, or swallow their cancellation
and go on (async), with random teardown failures and hangs, ``max_parallel``, retries and
registration order; a failure raises an ``Exception``, a ``BaseException`` of its own or
``SystemExit`` (with ``interrupt_exceptions=()``, all plain failures); runs it once
(cancelled at a random point, or twice, on an injected pool, or through a session); and
checks guarantees 1-5 against both the report and the tasks' own event log.
``--hypothesis-profile soak`` runs 2,000 examples of each.
"""

from __future__ import annotations

import asyncio

from hypothesis import given

from ._scenario import (
    DagPlan,
    check_abandoned_setups_cleaned,
    check_guarantees,
    check_results,
    run_plan,
)
from ._strategies import dag_plans


@given(plan=dag_plans())
def test_random_dag_keeps_every_guarantee(plan: DagPlan) -> None:
    out = asyncio.run(run_plan(plan))
    assert not out.cancelled
    check_guarantees(out)
    check_abandoned_setups_cleaned(out)


@given(plan=dag_plans(max_tasks=40, cancel=True))
def test_random_dag_cancelled_at_a_random_point_keeps_every_guarantee(plan: DagPlan) -> None:
    out = asyncio.run(run_plan(plan))
    check_guarantees(out)
    check_abandoned_setups_cleaned(out)


@given(plan=dag_plans(max_tasks=30, twice=True))
def test_random_dag_cancelled_twice_is_finalized_and_reports_every_teardown(
    plan: DagPlan,
) -> None:
    out = asyncio.run(run_plan(plan))
    check_guarantees(out)
    check_abandoned_setups_cleaned(out)


@given(plan=dag_plans(max_tasks=30, pool=True))
def test_random_dag_on_an_injected_thread_pool_keeps_every_guarantee(plan: DagPlan) -> None:
    """Sync tasks queue for the pool's few workers; their timeouts start when they run."""
    out = asyncio.run(run_plan(plan))
    assert not out.cancelled
    check_guarantees(out)
    check_abandoned_setups_cleaned(out)


@given(plan=dag_plans(max_tasks=30, session=True))
def test_random_dag_in_a_session_gives_each_result_or_its_failure(plan: DagPlan) -> None:
    """``Engine.session`` and ``ActiveRun.result``: the path the pytest plugin takes."""
    out = asyncio.run(run_plan(plan))
    assert not out.cancelled
    check_guarantees(out)
    check_results(out)
    check_abandoned_setups_cleaned(out)
