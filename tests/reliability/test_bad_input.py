"""The bad-input catalogue of the core: every kind of bad input gets its own typed error,
a ``FlowrunError``, with a message naming the culprit, and no task body runs.

Every case registers two canary tasks (one sync, one async, both roots) that would run
first if the run started, then does the bad thing.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from flowrun import (
    CycleError,
    DuplicateTaskError,
    FlowrunError,
    InvalidDependencyError,
    InvalidMaxParallelError,
    InvalidOptionError,
    InvalidRetriesError,
    InvalidTimeoutError,
    MissingDependencyError,
    RunContext,
    SchedulerConfig,
    SelfDependencyError,
    StateStore,
    TaskDefinitionError,
    TaskRegistry,
    TaskSignatureError,
    UnknownRunError,
    UnknownTaskError,
    build_default_engine,
    task,
)


@dataclass(frozen=True)
class Case:
    id: str
    error: type[FlowrunError]
    culprits: tuple[str, ...]
    action: Callable[[TaskRegistry, list[str]], Any]


CASES: list[Case] = []


def case(
    error: type[FlowrunError], *culprits: str
) -> Callable[[Callable[[TaskRegistry, list[str]], Any]], Callable[..., Any]]:
    def register(action: Callable[[TaskRegistry, list[str]], Any]) -> Callable[..., Any]:
        CASES.append(Case(action.__name__, error, culprits, action))
        return action

    return register


def run(registry: TaskRegistry, **kwargs: Any) -> str:
    engine = build_default_engine(registry=registry)
    return asyncio.run(engine.run_once("bad", **kwargs))


def noop() -> None:
    pass


# -- the DAG ------------------------------------------------------------------------------


@case(MissingDependencyError, "'email_user'", "'fetch_usr'", "'fetch_user'")
def missing_dependency(registry: TaskRegistry, ran: list[str]) -> None:
    task(name="fetch_user", registry=registry)(noop)
    task(name="email_user", deps=["fetch_usr"], registry=registry)(lambda: None)
    run(registry)


@case(CycleError, "a -> b -> c -> a")
def cycle(registry: TaskRegistry, ran: list[str]) -> None:
    task(name="a", deps=["b"], registry=registry)(lambda: None)
    task(name="b", deps=["c"], registry=registry)(lambda: None)
    task(name="c", deps=["a"], registry=registry)(lambda: None)
    run(registry)


@case(SelfDependencyError, "'selfish'")
def self_dependency(registry: TaskRegistry, ran: list[str]) -> None:
    task(name="selfish", deps=["selfish"], registry=registry)(noop)


@case(DuplicateTaskError, "'twice'")
def duplicate_name(registry: TaskRegistry, ran: list[str]) -> None:
    task(name="twice", registry=registry)(lambda: 1)
    task(name="twice", registry=registry)(lambda: 2)


@case(InvalidDependencyError, "'needs_number'", "42")
def non_callable_dependency(registry: TaskRegistry, ran: list[str]) -> None:
    task(name="needs_number", deps=[42], registry=registry)(noop)  # type: ignore[list-item]


def plain_helper() -> None:
    """Not a task."""


@case(InvalidDependencyError, "'needs_helper'", "plain_helper")
def unregistered_callable_dependency(registry: TaskRegistry, ran: list[str]) -> None:
    task(name="needs_helper", deps=[plain_helper], registry=registry)(noop)


@case(InvalidDependencyError, "'stringly'", "'fetch'")
def deps_as_a_string(registry: TaskRegistry, ran: list[str]) -> None:
    task(name="stringly", deps="fetch", registry=registry)(noop)


@case(UnknownTaskError, "'no_such_task'")
def unknown_task_selected(registry: TaskRegistry, ran: list[str]) -> None:
    run(registry, tasks=["no_such_task"])


# -- options ------------------------------------------------------------------------------


#: Each bad input its own class (all of them InvalidOptionErrors); other options share it.
OPTION_ERRORS: dict[str, type[FlowrunError]] = {
    "timeout_s": InvalidTimeoutError,
    "default_timeout_s": InvalidTimeoutError,
    "retries": InvalidRetriesError,
    "max_parallel": InvalidMaxParallelError,
}


def _bad_option(option: str, value: Any) -> Callable[[TaskRegistry, list[str]], None]:
    def action(registry: TaskRegistry, ran: list[str]) -> None:
        task(name="optioned", registry=registry, **{option: value})(noop)

    return action


for _option, _value in [
    ("timeout_s", 0),
    ("timeout_s", -1.5),
    ("timeout_s", math.nan),
    ("timeout_s", math.inf),
    ("timeout_s", "5"),
    ("retries", -1),
    ("retries", 1.5),
    ("retries", True),
    ("retry_delay_s", -0.1),
    ("retry_delay_s", math.nan),
]:
    CASES.append(
        Case(
            f"{_option}={_value!r}",
            OPTION_ERRORS.get(_option, InvalidOptionError),
            ("'optioned'", _option, repr(_value)),
            _bad_option(_option, _value),
        )
    )


def _bad_config(option: str, value: Any) -> Callable[[TaskRegistry, list[str]], None]:
    def action(registry: TaskRegistry, ran: list[str]) -> None:
        SchedulerConfig(**{option: value})

    return action


for _option, _value in [
    ("max_parallel", 0),
    ("max_parallel", -3),
    ("max_parallel", 2.0),
    ("max_parallel", True),
    ("default_timeout_s", 0),
    ("default_timeout_s", -1),
    ("default_timeout_s", 10**400),  # beyond any float: refused, not an OverflowError
]:
    CASES.append(
        Case(
            f"{_option}={_value!r}",
            OPTION_ERRORS.get(_option, InvalidOptionError),
            (_option, repr(_value)),
            _bad_config(_option, _value),
        )
    )


@case(InvalidOptionError, "max_runs", "0")
def store_keeping_no_runs(registry: TaskRegistry, ran: list[str]) -> None:
    StateStore(max_runs=0)


# -- signatures and run inputs ------------------------------------------------------------


@case(TaskSignatureError, "'unfillable'", "'user_id'")
def unfillable_parameter(registry: TaskRegistry, ran: list[str]) -> None:
    def unfillable(user_id: str) -> None:
        pass

    task(registry=registry)(unfillable)


@case(TaskSignatureError, "'positional'", "'ctx'")
def positional_only_context(registry: TaskRegistry, ran: list[str]) -> None:
    def positional(ctx: RunContext[Any], /) -> None:
        pass

    task(registry=registry)(positional)


@case(InvalidOptionError, "'needs_context'", "'ctx'", "context")
def missing_context(registry: TaskRegistry, ran: list[str]) -> None:
    @task(registry=registry, deps=["canary_sync", "canary_async"])
    def needs_context(ctx: RunContext[Any]) -> None:
        ran.append("needs_context")

    run(registry)


@case(TaskDefinitionError, "'generator_setup'", "process pool")
def sync_generator_in_a_process_pool(registry: TaskRegistry, ran: list[str]) -> None:
    @task(registry=registry)
    def generator_setup() -> Iterator[int]:
        yield 1

    with ProcessPoolExecutor(max_workers=1) as pool:
        engine = build_default_engine(executor=pool, registry=registry)
        asyncio.run(engine.run_once("bad"))


@case(UnknownRunError, "'not-a-run-id'")
def unknown_run_id(registry: TaskRegistry, ran: list[str]) -> None:
    engine = build_default_engine(registry=registry)
    asyncio.run(engine.run_once("good"))
    ran.clear()  # that run was fine; only the lookup below is bad
    engine.get_run_report("not-a-run-id")


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_raises_its_typed_error_naming_the_culprit_before_anything_runs(
    bad: Case,
) -> None:
    registry = TaskRegistry()
    ran: list[str] = []

    @task(registry=registry)
    def canary_sync() -> None:
        ran.append("canary_sync")

    @task(registry=registry)
    async def canary_async() -> None:
        ran.append("canary_async")

    with pytest.raises(bad.error) as info:
        bad.action(registry, ran)

    assert type(info.value) is bad.error
    assert isinstance(info.value, FlowrunError)
    message = str(info.value)
    for culprit in bad.culprits:
        assert culprit in message, f"{culprit!r} not in {message!r}"
    assert message == message.strip()
    assert ran == [], f"task bodies ran despite bad input: {ran}"
