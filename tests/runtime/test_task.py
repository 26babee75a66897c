"""``@task``, ``TaskSpec`` and ``TaskRegistry``: registration, injection, and bad declarations."""

from __future__ import annotations

import dataclasses
import functools
import gc
import inspect
import pickle
import sys
import types
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from flowrun.context import RunContext
from flowrun.engine import Engine, build_default_engine
from flowrun.errors import (
    DuplicateTaskError,
    FlowrunError,
    InvalidDependencyError,
    InvalidOptionError,
    InvalidRetriesError,
    InvalidTimeoutError,
    SelfDependencyError,
    TaskDefinitionError,
    TaskSignatureError,
    UnknownTaskError,
)
from flowrun.task import TaskKind, TaskRegistry, TaskSpec, default_registry, spec_of, task

from . import _process_tasks


class TestRegistration:
    def test_bare_task_registers_in_the_default_registry(
        self, clean_default_registry: TaskRegistry
    ) -> None:
        @task
        def hello() -> str:
            return "hi"

        assert clean_default_registry.names() == ["hello"]
        spec = clean_default_registry.get("hello")
        assert isinstance(spec, TaskSpec)
        assert spec.fn is hello
        assert spec.deps == ()

    def test_called_task_takes_its_options(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def a() -> None: ...

        @task(
            name="renamed", deps=[a], timeout_s=2, retries=3, retry_delay_s=0.5, registry=registry
        )
        def b() -> None: ...

        spec = registry.get("renamed")
        assert (spec.name, spec.deps, spec.timeout_s, spec.retries, spec.retry_delay_s) == (
            "renamed",
            ("a",),
            2.0,
            3,
            0.5,
        )
        assert "b" not in registry

    def test_called_task_without_registry_uses_the_default_one(
        self, clean_default_registry: TaskRegistry
    ) -> None:
        @task(name="x")
        def f() -> None: ...

        assert clean_default_registry.names() == ["x"]

    def test_called_with_no_arguments_is_like_bare(
        self, clean_default_registry: TaskRegistry
    ) -> None:
        @task()
        async def empty_parens() -> None: ...

        assert clean_default_registry.get("empty_parens").fn is empty_parens

    def test_an_empty_registry_passed_in_is_used_not_the_default(
        self, clean_default_registry: TaskRegistry
    ) -> None:
        mine = TaskRegistry()  # empty, hence falsy: it must still be the one used
        task(name="t", registry=mine)(lambda: None)
        assert mine.names() == ["t"]
        assert len(clean_default_registry) == 0
        assert build_default_engine(registry=TaskRegistry()).registry is not default_registry

    def test_default_registry_is_the_default_engine_registry(self) -> None:
        assert build_default_engine().registry is default_registry

    @pytest.mark.asyncio
    async def test_engine_built_before_the_tasks_sees_them(
        self, clean_default_registry: TaskRegistry
    ) -> None:
        engine = build_default_engine()  # as in the README: engine first, tasks after

        @task
        async def late() -> int:
            return 7

        assert engine.registry is clean_default_registry
        run_id = await engine.run_once("late")
        assert engine.get_run_report(run_id)["tasks"]["late"]["result"] == 7

    def test_registration_order_is_kept(self, registry: TaskRegistry) -> None:
        for name in ["zeta", "alpha", "mid"]:
            task(name=name, registry=registry)(lambda: None)
        assert registry.names() == ["zeta", "alpha", "mid"]
        assert [spec.name for spec in registry] == ["zeta", "alpha", "mid"]
        assert len(registry) == 3

    def test_unregister_and_unknown_names(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def fetch_user() -> None: ...

        with pytest.raises(UnknownTaskError, match=r"'fetch_usr'.*did you mean 'fetch_user'"):
            registry.get("fetch_usr")
        registry.unregister("fetch_user")
        assert "fetch_user" not in registry
        with pytest.raises(UnknownTaskError):
            registry.unregister("fetch_user")

    def test_same_function_registered_twice_is_not_a_duplicate(
        self, registry: TaskRegistry
    ) -> None:
        def f() -> None: ...

        task(registry=registry)(f)
        task(registry=registry)(f)
        assert registry.names() == ["f"]


class TestDecoratedFunction:
    def test_stays_callable_as_the_plain_function(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def add(a: int = 1, b: int = 2) -> int:
            return a + b

        assert add(3, b=4) == 7
        assert add.__name__ == "add"

    @pytest.mark.asyncio
    async def test_async_task_stays_awaitable(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        async def twice(x: int = 2) -> int:
            return x * 2

        assert await twice(5) == 10

    def test_module_level_sync_task_pickles_to_itself(self) -> None:
        assert pickle.loads(pickle.dumps(_process_tasks.where)) is _process_tasks.where
        assert _process_tasks.where() > 0


class TestDependencies:
    def test_by_name_and_by_reference_are_the_same(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def a() -> None: ...

        @task(registry=registry)
        def b() -> None: ...

        @task(deps=["a", b], registry=registry)
        def c() -> None: ...

        assert registry.get("c").deps == ("a", "b")

    def test_reference_resolves_to_the_given_name(self, registry: TaskRegistry) -> None:
        @task(name="the_source", registry=registry)
        def source() -> None: ...

        @task(deps=[source], registry=registry)
        def sink() -> None: ...

        assert registry.get("sink").deps == ("the_source",)

    def test_repeated_dependency_is_kept_once(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def a() -> None: ...

        @task(deps=[a, "a"], registry=registry)
        def b() -> None: ...

        assert registry.get("b").deps == ("a",)


class TestSignatureAnalysis:
    def test_context_by_annotation_and_upstream_by_name(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def parent() -> None: ...

        @task(deps=[parent], registry=registry)
        def child(ctx: RunContext[Any], upstream: dict[str, Any], extra: int = 3) -> None: ...

        spec = registry.get("child")
        assert spec.context_arg == "ctx"
        assert spec.upstream_arg == "upstream"

    def test_bare_run_context_annotation(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def f(context: RunContext) -> None:  # type: ignore[type-arg]
            ...

        assert registry.get("f").context_arg == "context"

    def test_string_annotation_from_future_import(self, registry: TaskRegistry) -> None:
        # This module has ``from __future__ import annotations``: every annotation is a string.
        @task(registry=registry)
        def f(c: RunContext[dict[str, int]]) -> None: ...

        assert isinstance(f.__annotations__["c"], str)
        assert registry.get("f").context_arg == "c"

    def test_string_annotation_naming_an_undefined_bundle(self, registry: TaskRegistry) -> None:
        def f(c: RunContext[Any]) -> None: ...

        f.__annotations__["c"] = "RunContext[Deps]"  # ``Deps`` is not defined in this module
        task(registry=registry)(f)
        assert registry.get("f").context_arg == "c"

    def test_dotted_string_annotation(self, registry: TaskRegistry) -> None:
        def f(c: Any) -> None: ...

        f.__annotations__["c"] = "flowrun.context.RunContext[Any]"
        task(registry=registry)(f)
        assert registry.get("f").context_arg == "c"

    def test_parameter_named_like_context_without_annotation_is_not_injected(
        self, registry: TaskRegistry
    ) -> None:
        with pytest.raises(TaskSignatureError):

            @task(registry=registry)
            def f(context) -> None:  # type: ignore[no-untyped-def]
                ...

    def test_parameter_with_default_is_left_alone(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def f(limit: int = 10) -> int:
            return limit

        spec = registry.get("f")
        assert (spec.context_arg, spec.upstream_arg) == (None, None)

    @pytest.mark.asyncio
    async def test_a_defaulted_parameter_keeps_its_default_when_run(
        self, registry: TaskRegistry
    ) -> None:
        @task(registry=registry)
        def f(limit: int = 10, *, label: str = "x") -> str:
            return f"{label}{limit}"

        engine = build_default_engine(registry=registry)
        run_id = await engine.run_once("d", context=RunContext(object()))
        assert engine.get_run_report(run_id)["tasks"]["f"]["result"] == "x10"

    def test_parameter_without_default_names_task_and_parameter(
        self, registry: TaskRegistry
    ) -> None:
        with pytest.raises(TaskSignatureError) as info:

            @task(name="load", registry=registry)
            def f(path: str) -> None: ...

        assert isinstance(info.value, FlowrunError)
        assert isinstance(info.value, TypeError)
        assert (info.value.task, info.value.parameter) == ("load", "path")
        assert "'load'" in str(info.value)
        assert "'path'" in str(info.value)
        assert "load" not in registry

    def test_optional_and_annotated_context(self, registry: TaskRegistry) -> None:
        def union(c: RunContext[Any] | None = None) -> None: ...

        def optional(c: Any = None) -> None: ...

        def annotated(c: Any) -> None: ...

        optional.__annotations__["c"] = "Optional[RunContext[Deps]]"
        annotated.__annotations__["c"] = "Annotated[RunContext[Deps], 'the bundle']"
        for fn in (union, optional, annotated):
            task(registry=registry)(fn)
            assert registry.get(fn.__name__).context_arg == "c", fn.__name__

    def test_star_parameters_are_left_alone(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def f(*args: int, **kwargs: int) -> None: ...

        spec = registry.get("f")
        assert (spec.context_arg, spec.upstream_arg, spec.requires) == (None, None, ())

    def test_a_positional_only_context_is_refused(self, registry: TaskRegistry) -> None:
        with pytest.raises(TaskSignatureError, match=r"'f'.*'ctx'.*positional-only"):

            @task(registry=registry)
            def f(ctx: RunContext[Any], /) -> None: ...

    def test_two_context_parameters_are_refused(self, registry: TaskRegistry) -> None:
        with pytest.raises(TaskSignatureError, match=r"'second'.*second RunContext"):

            @task(registry=registry)
            def f(first: RunContext[Any], second: RunContext[Any]) -> None: ...

    def test_partial_and_async_callable_objects(self, registry: TaskRegistry) -> None:
        async def fetch(url: str, upstream: dict[str, Any]) -> str:
            return url

        class Client:
            async def __call__(self, upstream: dict[str, Any]) -> str:
                return "called"

        task(name="partial", registry=registry)(functools.partial(fetch, "https://x"))
        task(name="client", registry=registry)(Client())
        assert registry.get("partial").kind is TaskKind.ASYNC
        assert registry.get("partial").upstream_arg == "upstream"
        assert registry.get("client").kind is TaskKind.ASYNC

    def test_a_callable_without_a_name_needs_one(self, registry: TaskRegistry) -> None:
        with pytest.raises(TaskDefinitionError, match=r"pass name="):
            task(registry=registry)(functools.partial(print))

    def test_generator_kinds(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def sync_gen() -> Iterator[int]:
            yield 1

        @task(registry=registry)
        async def async_gen() -> AsyncIterator[int]:
            yield 1

        assert registry.get("sync_gen").kind.is_generator
        assert not registry.get("sync_gen").kind.is_async
        assert registry.get("async_gen").kind.is_generator
        assert registry.get("async_gen").kind.is_async


class TestManyTasksFromOneDefinition:
    """A plain function's signature is read once per code object and reused: every function
    made from that code still gets a spec of its own, from its own defaults and annotations."""

    def test_one_function_under_many_names_gets_independent_specs(
        self, registry: TaskRegistry
    ) -> None:
        async def body(upstream: dict[str, Any], a: int = 0) -> None: ...

        task(name="a", registry=registry)(body)
        task(name="b", deps=["a"], timeout_s=2, registry=registry)(body)
        task(name="c", deps=["a", "b"], retries=1, registry=registry)(body)
        a, b, c = (registry.get(name) for name in "abc")
        assert (a.deps, b.deps, c.deps) == ((), ("a",), ("a", "b"))
        assert (a.parent_args, b.parent_args, c.parent_args) == ((), ("a",), ("a",))
        assert (a.timeout_s, b.timeout_s, c.timeout_s) == (None, 2.0, None)
        assert (a.retries, b.retries, c.retries) == (0, 0, 1)
        assert all(s.fn is body and s.kind is TaskKind.ASYNC for s in (a, b, c))
        assert all(s.upstream_arg == "upstream" and s.context_arg is None for s in (a, b, c))
        assert a.bound is not b.bound
        assert spec_of(body) is c

    def test_a_family_loop_reads_each_functions_defaults(self, registry: TaskRegistry) -> None:
        for i in range(3):

            @task(name=f"fetch_{i}", registry=registry)
            def _fetch(upstream: Any = None, value: int = i) -> int:
                return value

        assert [registry.get(f"fetch_{i}").fn() for i in range(3)] == [0, 1, 2]
        same_code = registry.get("fetch_0").fn
        without_defaults = types.FunctionType(same_code.__code__, same_code.__globals__, "bare")
        with pytest.raises(TaskSignatureError, match=r"task 'bare'.*'upstream'"):
            task(name="bare", registry=registry)(without_defaults)

    def test_keyword_only_defaults_are_each_functions_own(self, registry: TaskRegistry) -> None:
        def f(*, flag: bool = False) -> None: ...

        task(name="with_default", registry=registry)(f)
        bare = types.FunctionType(f.__code__, f.__globals__, "bare")
        with pytest.raises(TaskSignatureError, match=r"'flag'"):
            task(name="bare", registry=registry)(bare)

    def test_annotations_are_each_functions_own(self, registry: TaskRegistry) -> None:
        def make() -> Any:
            def f(c) -> None:  # type: ignore[no-untyped-def]
                ...

            return f

        context, plain = make(), make()
        assert context.__code__ is plain.__code__
        context.__annotations__ = {"c": RunContext[Any]}
        plain.__annotations__ = {"c": int}
        task(name="context", registry=registry)(context)
        with pytest.raises(TaskSignatureError, match=r"'c'"):
            task(name="plain", registry=registry)(plain)
        plain.__annotations__ = {"c": "RunContext[Any]"}
        task(name="plain", registry=registry)(plain)
        assert registry.get("context").context_arg == registry.get("plain").context_arg == "c"

    def test_a_string_annotation_is_resolved_in_each_functions_globals(
        self, registry: TaskRegistry
    ) -> None:
        code = compile("def f(c: 'Ctx') -> None: ...", "<family>", "exec")
        first: dict[str, Any] = {"Ctx": RunContext}
        second: dict[str, Any] = {"Ctx": int}
        exec(code, first)
        exec(code, second)
        assert first["f"].__code__ is second["f"].__code__
        task(name="first", registry=registry)(first["f"])
        assert registry.get("first").context_arg == "c"
        with pytest.raises(TaskSignatureError, match=r"'c'"):
            task(name="second", registry=registry)(second["f"])

    def test_a_signature_set_on_a_function_is_honoured(self, registry: TaskRegistry) -> None:
        def f(*args: Any, **kwargs: Any) -> None: ...

        task(name="plain", registry=registry)(f)
        g = types.FunctionType(f.__code__, f.__globals__, "g")
        g.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter("needed", inspect.Parameter.KEYWORD_ONLY)]
        )
        with pytest.raises(TaskSignatureError, match=r"'needed'"):
            task(name="g", registry=registry)(g)

    def test_a_wrapper_is_read_through_its_wrapped_function(self, registry: TaskRegistry) -> None:
        def inner(upstream: dict[str, Any]) -> Iterator[int]:
            yield 1

        @functools.wraps(inner)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return inner(*args, **kwargs)

        task(name="plain", registry=registry)(wrapper.__wrapped__)
        task(name="wrapped", registry=registry)(wrapper)
        spec = registry.get("wrapped")
        assert (spec.kind, spec.upstream_arg) == (TaskKind.SYNC_GENERATOR, "upstream")

    def test_what_is_learnt_of_a_code_object_goes_with_it(self, registry: TaskRegistry) -> None:
        task_module = sys.modules["flowrun._signature"]
        namespace: dict[str, Any] = {}
        exec(compile("def f() -> None: ...", "<gone>", "exec"), namespace)
        task(name="gone", registry=registry)(namespace["f"])
        code = weakref.ref(namespace["f"].__code__)
        key = id(code())
        assert task_module._CODE_ENTRIES[key].code() is code()
        registry.unregister("gone")
        namespace.clear()
        gc.collect()
        assert code() is None
        assert key not in task_module._CODE_ENTRIES

    def test_the_cheap_spec_is_the_dataclass_spec(self) -> None:
        def f() -> None: ...

        values: dict[str, Any] = dict(
            name="t",
            fn=f,
            deps=("a", "b"),
            timeout_s=1.5,
            retries=2,
            retry_delay_s=0.25,
            kind=TaskKind.SYNC_GENERATOR,
            context_arg="ctx",
            upstream_arg="upstream",
            parent_args=("a",),
            requires=("tmp_path",),
            fixture=True,
            resources=(("db", 1), ("docker", 2)),
        )
        fields = {field.name for field in dataclasses.fields(TaskSpec)}
        assert set(values) == fields - {"bound"}
        fast = sys.modules["flowrun.task"]._task_spec(**values)
        slow = TaskSpec(**values)
        assert type(fast) is TaskSpec
        assert dataclasses.astuple(fast) == dataclasses.astuple(slow)
        assert repr(fast) == repr(slow)
        assert fast.bound == {}
        assert fast.bound is not sys.modules["flowrun.task"]._task_spec(**values).bound
        with pytest.raises(dataclasses.FrozenInstanceError):
            fast.name = "other"  # type: ignore[misc]
        assert dataclasses.replace(fast, retries=0).retries == 0

    def test_numbers_of_any_real_type_are_stored_as_floats(self, registry: TaskRegistry) -> None:
        class Seconds(float):
            pass

        @task(timeout_s=Seconds(2.5), retry_delay_s=1, registry=registry)
        def f() -> None: ...

        spec = registry.get("f")
        assert (spec.timeout_s, spec.retry_delay_s) == (2.5, 1.0)
        assert type(spec.timeout_s) is float
        assert type(spec.retry_delay_s) is float

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("timeout_s", True),
            ("retry_delay_s", True),
            ("retry_delay_s", float("nan")),
            ("retry_delay_s", float("inf")),
            ("retry_delay_s", -1),
            pytest.param("retry_delay_s", 10**400, id="retry_delay_s-beyond-any-float"),
            ("retry_delay_s", -0.5),
            ("retry_delay_s", "1"),
        ],
    )
    def test_values_the_quick_check_passes_over_are_still_refused(
        self, registry: TaskRegistry, option: str, value: Any
    ) -> None:
        with pytest.raises(InvalidOptionError, match=rf"task 'f': {option}="):

            @task(registry=registry, **{option: value})
            def f() -> None: ...


class TestBadDeclarations:
    def test_duplicate_name_from_a_different_function(self, registry: TaskRegistry) -> None:
        @task(name="load", registry=registry)
        def first() -> None: ...

        with pytest.raises(DuplicateTaskError, match=r"'load'.*first") as info:

            @task(name="load", registry=registry)
            def second() -> None: ...

        assert isinstance(info.value, FlowrunError)
        assert isinstance(info.value, ValueError)
        assert info.value.task == "load"
        assert registry.get("load").fn is first

    def test_self_dependency_by_name(self, registry: TaskRegistry) -> None:
        with pytest.raises(SelfDependencyError, match=r"'loop' depends on itself") as info:

            @task(name="loop", deps=["loop"], registry=registry)
            def f() -> None: ...

        assert info.value.task == "loop"
        assert "loop" not in registry

    def test_non_callable_in_deps(self, registry: TaskRegistry) -> None:
        with pytest.raises(InvalidDependencyError, match=r"task 'f'.*42") as info:

            @task(deps=[42], registry=registry)  # type: ignore[list-item]
            def f() -> None: ...

        assert isinstance(info.value, FlowrunError)
        assert info.value.task == "f"
        assert info.value.dependency == 42

    def test_unregistered_callable_in_deps(self, registry: TaskRegistry) -> None:
        def helper() -> None: ...

        with pytest.raises(InvalidDependencyError, match=r"task 'f'.*helper.*not a task"):

            @task(deps=[helper], registry=registry)
            def f() -> None: ...

    def test_task_of_another_registry_in_deps(self, registry: TaskRegistry) -> None:
        other = TaskRegistry()

        @task(registry=other)
        def elsewhere() -> None: ...

        with pytest.raises(InvalidDependencyError, match="another registry"):

            @task(deps=[elsewhere], registry=registry)
            def f() -> None: ...

    def test_none_or_a_lone_task_as_deps(self, registry: TaskRegistry) -> None:
        @task(registry=registry)
        def parent() -> None: ...

        for bad in (None, parent):
            with pytest.raises(InvalidDependencyError, match="takes a list"):
                task(name="child", deps=bad, registry=registry)(lambda: None)  # type: ignore[call-overload]
        assert "child" not in registry

    def test_a_string_as_deps(self, registry: TaskRegistry) -> None:
        with pytest.raises(InvalidDependencyError, match="list"):

            @task(deps="abc", registry=registry)
            def f() -> None: ...

    @pytest.mark.parametrize(
        "timeout_s",
        [
            0,
            -1,
            -0.5,
            float("nan"),
            float("inf"),
            pytest.param(10**400, id="beyond-any-float"),
            "5",
        ],
    )
    def test_bad_timeout(self, registry: TaskRegistry, timeout_s: Any) -> None:
        with pytest.raises(InvalidTimeoutError, match=r"task 'f': timeout_s=") as info:

            @task(timeout_s=timeout_s, registry=registry)
            def f() -> None: ...

        assert isinstance(info.value, InvalidOptionError)
        assert isinstance(info.value, ValueError)
        assert (info.value.option, info.value.task) == ("timeout_s", "f")
        assert "f" not in registry

    @pytest.mark.parametrize("retries", [-1, 1.5, True])
    def test_bad_retries(self, registry: TaskRegistry, retries: Any) -> None:
        with pytest.raises(InvalidRetriesError, match=r"task 'f': retries=") as info:

            @task(retries=retries, registry=registry)
            def f() -> None: ...

        assert info.value.option == "retries"

    def test_negative_retry_delay(self, registry: TaskRegistry) -> None:
        with pytest.raises(InvalidOptionError, match="retry_delay_s"):

            @task(retry_delay_s=-1, registry=registry)
            def f() -> None: ...

    def test_task_called_with_a_name_instead_of_a_function(self) -> None:
        with pytest.raises(FlowrunError, match=r"@task\(name='x'\)"):
            task("x")  # type: ignore[call-overload]


@pytest.mark.asyncio
async def test_bad_declaration_leaves_nothing_to_run(registry: TaskRegistry) -> None:
    """A declaration error happens at decoration time, so the body never runs."""
    ran: list[str] = []

    with pytest.raises(TaskSignatureError):

        @task(registry=registry)
        def f(x: int) -> None:
            ran.append("f")

    engine: Engine = build_default_engine(registry=registry)
    run_id = await engine.run_once("empty")
    assert engine.get_run_report(run_id)["tasks"] == {}
    assert ran == []
