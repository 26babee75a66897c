"""What the session's setup run is made of, before it starts: ``plan_run``.

The selected tasks' specs, bound to the values of the fixtures they take; the DAG; the
run context from the ``pytest_flowrun_context`` hook; the scheduler configured from the
plugin's settings, with pytest's outcomes as skips and interrupts; the durations kept
from the last session. ``SetupSession`` starts the plan on its loop; so does the xdist
controller in ``once`` mode (``_once``), with fixture values of its own.

Imports the plugin's ``_discovery``, ``_durations``, ``_names``, ``_options``,
``_outcomes`` and ``_selection``; the runtime inside ``plan_run``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flowrun._discovery import TaskEntry
from pytest_flowrun._durations import expected_durations
from pytest_flowrun._names import DAG_NAME
from pytest_flowrun._options import Settings
from pytest_flowrun._outcomes import INTERRUPT_EXCEPTIONS, SKIP_EXCEPTIONS
from pytest_flowrun._selection import Selection

if TYPE_CHECKING:
    from flowrun.context import RunContext
    from flowrun.dag import Dag
    from flowrun.scheduler import ActiveRun, Scheduler
    from flowrun.state import StateStore


class RunPlan:
    """A setup run ready to start: ``start`` it on the loop that will drive it."""

    # Not a dataclass: making one costs about a millisecond at every pytest start.
    __slots__ = ("context", "dag", "expected_s", "scheduler", "store")

    def __init__(
        self,
        dag: Dag,
        context: RunContext[Any] | None,
        scheduler: Scheduler,
        store: StateStore,
        expected_s: dict[str, float],
    ) -> None:
        self.dag = dag
        self.context = context
        self.scheduler = scheduler
        self.store = store
        self.expected_s = expected_s

    def start(self) -> ActiveRun:
        """Start the run; call it on the loop thread."""
        return self.scheduler.start(self.dag, self.context, expected_s=self.expected_s)


def plan_run(
    config: pytest.Config,
    settings: Settings,
    selection: Selection,
    entries: Mapping[str, TaskEntry],
    fixture_value: Callable[[str], Any],
) -> RunPlan:
    """Plan the run of ``selection.selected``, binding each task's fixture parameters to
    ``fixture_value(name)``.

    Fails (``pytest.fail``) for a task that takes a ``RunContext`` when no
    ``pytest_flowrun_context`` hook returns one.
    """
    from flowrun.context import RunContext
    from flowrun.dag import build_dag
    from flowrun.scheduler import Scheduler, SchedulerConfig
    from flowrun.state import StateStore

    specs = []
    for task_name in selection.selected:
        entry = entries[task_name]
        bound = {arg: fixture_value(arg) for arg in entry.fixture_args}
        prime_shared_services(bound)
        specs.append(entry.spec_to_run(bound))
    dag = build_dag(DAG_NAME, specs)
    context = config.hook.pytest_flowrun_context(config=config)
    if context is None:
        needs = [s for s in dag.specs if s.context_arg is not None]
        if needs:
            pytest.fail(
                f"flowrun: task {needs[0].name!r} takes a RunContext (parameter "
                f"{needs[0].context_arg!r}) but no pytest_flowrun_context hook returned "
                "one; implement pytest_flowrun_context(config) in a conftest.py",
                pytrace=False,
            )
    elif not isinstance(context, RunContext):
        context = RunContext(context)
    store = StateStore(max_runs=None)
    scheduler = Scheduler(
        SchedulerConfig(
            max_parallel=settings.max_parallel,
            default_timeout_s=settings.timeout_s,
            resources=dict(settings.resources),
            skip_exceptions=SKIP_EXCEPTIONS,
            interrupt_exceptions=INTERRUPT_EXCEPTIONS,
        ),
        state_store=store,
    )
    expected = expected_durations(config, selection.selected)
    return RunPlan(dag, context, scheduler, store, expected)


def prime_shared_services(bound: dict[str, Any]) -> None:
    """Make the pytest services among a task's fixture values safe to use from several
    tasks at once, on the main thread before the run: ``tmp_path_factory.mktemp`` from
    two threads races on creating the session's base temporary directory."""
    for value in bound.values():
        if isinstance(value, pytest.TempPathFactory):
            value.getbasetemp()
