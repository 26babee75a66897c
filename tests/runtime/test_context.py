"""``RunContext``: a read-through, read-only wrapper around a dependency bundle."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import pytest

from flowrun.context import RunContext
from flowrun.engine import Engine
from flowrun.task import TaskRegistry, task


@dataclass(frozen=True)
class Deps:
    base_url: str
    retries: int = 2


def test_attribute_access_reads_through_to_the_bundle() -> None:
    ctx = RunContext(Deps(base_url="https://api.example"))
    assert ctx.base_url == "https://api.example"
    assert ctx.retries == 2


def test_the_bundle_itself_is_reachable() -> None:
    deps = Deps(base_url="u")
    assert RunContext(deps).deps is deps


def test_is_generic() -> None:
    ctx: RunContext[Deps] = RunContext[Deps](Deps(base_url="u"))
    assert ctx.deps.base_url == "u"


def test_missing_attribute_names_it_and_the_bundle() -> None:
    with pytest.raises(AttributeError, match=r"'nope'.*Deps"):
        _ = RunContext(Deps(base_url="u")).nope


def test_is_read_only() -> None:
    ctx = RunContext(Deps(base_url="u"))
    with pytest.raises(AttributeError, match="read-only"):
        ctx.base_url = "v"


def test_equality_repr_and_pickling() -> None:
    ctx = RunContext(Deps(base_url="u"))
    assert ctx == RunContext(Deps(base_url="u"))
    assert hash(ctx) == hash(RunContext(Deps(base_url="u")))
    assert repr(ctx) == "RunContext(Deps(base_url='u', retries=2))"
    assert pickle.loads(pickle.dumps(ctx)) == ctx


def test_dict_bundle_keeps_dict_methods_reachable() -> None:
    ctx = RunContext({"a": 1})
    assert ctx.deps["a"] == 1
    assert ctx.get("a") == 1  # attribute lookup falls through to the dict


@pytest.mark.asyncio
async def test_tasks_receive_the_run_context(registry: TaskRegistry, engine: Engine) -> None:
    seen: list[object] = []

    @task(registry=registry)
    async def reader(context: RunContext[Deps]) -> str:
        seen.append(context)
        return str(context.base_url)

    @task(registry=registry)
    def sync_reader(ctx: RunContext[Deps]) -> str:
        seen.append(ctx)
        return ctx.deps.base_url

    ctx = RunContext(Deps(base_url="https://api.example"))
    run_id = await engine.run_once("ctx", context=ctx)
    tasks = engine.get_run_report(run_id)["tasks"]
    assert tasks["reader"]["result"] == "https://api.example"
    assert tasks["sync_reader"]["result"] == "https://api.example"
    assert seen == [ctx, ctx]
    assert all(c is ctx for c in seen)
