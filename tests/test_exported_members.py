"""The public surface, pinned: what ``flowrun`` and each of its public modules export."""

from __future__ import annotations
import __future__

import importlib
import inspect
import subprocess
import sys
import types

import pytest

import flowrun
from flowrun import errors

PUBLIC_MODULES = {
    "flowrun.context": ["RunContext"],
    "flowrun.dag": ["Dag", "build_dag"],
    "flowrun.engine": ["Engine", "RunSession", "build_default_engine"],
    "flowrun.errors": [
        "CycleError",
        "DuplicateTaskError",
        "FlowrunError",
        "GeneratorProtocolError",
        "InvalidDependencyError",
        "InvalidMaxParallelError",
        "InvalidOptionError",
        "InvalidResourceError",
        "InvalidRetriesError",
        "InvalidTimeoutError",
        "MissingDependencyError",
        "RunFinalizedError",
        "SelfDependencyError",
        "TaskDefinitionError",
        "TaskFailedError",
        "TaskSignatureError",
        "TaskTimeoutError",
        "UnknownRunError",
        "UnknownTaskError",
    ],
    "flowrun.executor": ["AttemptOutcome", "GeneratorProtocolError", "TaskExecutor"],
    "flowrun.scheduler": ["ActiveRun", "Scheduler", "SchedulerConfig", "TaskFailedError"],
    "flowrun.state": [
        "RunFinalizedError",
        "RunRecord",
        "RunStatus",
        "StateStore",
        "StateStoreProtocol",
        "TaskError",
        "TaskRunRecord",
        "TaskStatus",
    ],
    "flowrun.task": [
        "TaskKind",
        "TaskRegistry",
        "TaskSpec",
        "default_registry",
        "make_spec",
        "spec_of",
        "task",
    ],
}

PACKAGE_EXPORTS = [
    "ActiveRun",
    "CycleError",
    "Dag",
    "DuplicateTaskError",
    "Engine",
    "FlowrunError",
    "GeneratorProtocolError",
    "InvalidDependencyError",
    "InvalidMaxParallelError",
    "InvalidOptionError",
    "InvalidResourceError",
    "InvalidRetriesError",
    "InvalidTimeoutError",
    "MissingDependencyError",
    "RunContext",
    "RunFinalizedError",
    "RunRecord",
    "RunSession",
    "RunStatus",
    "Scheduler",
    "SchedulerConfig",
    "SelfDependencyError",
    "StateStore",
    "StateStoreProtocol",
    "TaskDefinitionError",
    "TaskError",
    "TaskFailedError",
    "TaskRegistry",
    "TaskRunRecord",
    "TaskSignatureError",
    "TaskSpec",
    "TaskStatus",
    "TaskTimeoutError",
    "UnknownRunError",
    "UnknownTaskError",
    "__version__",
    "build_dag",
    "build_default_engine",
    "default_registry",
    "task",
]


def test_package_all_is_pinned_and_sorted() -> None:
    assert flowrun.__all__ == PACKAGE_EXPORTS
    assert flowrun.__all__ == sorted(flowrun.__all__)


def test_package_exports_every_public_name_it_holds() -> None:
    public = {
        name
        for name, value in vars(flowrun).items()
        if not name.startswith("_")
        and not isinstance(value, (types.ModuleType, __future__._Feature))
    }
    assert public | {"__version__"} == set(flowrun.__all__)


def test_package_reexports_the_same_objects_as_the_modules() -> None:
    homes = {name: module for module, names in PUBLIC_MODULES.items() for name in names}
    for name in flowrun.__all__:
        if name in homes:
            module = importlib.import_module(homes[name])
            assert getattr(flowrun, name) is getattr(module, name), name


def test_the_everyday_names_are_at_the_top() -> None:
    everyday = {"task", "TaskRegistry", "RunContext", "Engine", "build_default_engine"}
    everyday |= {"SchedulerConfig", "TaskStatus", *PUBLIC_MODULES["flowrun.errors"]}
    assert everyday <= set(flowrun.__all__)


@pytest.mark.parametrize("module_name", sorted(PUBLIC_MODULES))
def test_module_all_is_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__all__ == PUBLIC_MODULES[module_name]


@pytest.mark.parametrize("module_name", sorted(PUBLIC_MODULES))
def test_module_exports_every_public_class_and_function_it_defines(module_name: str) -> None:
    module = importlib.import_module(module_name)
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module_name
    }
    assert defined <= set(module.__all__)


@pytest.mark.parametrize(
    ("module_name", "name"),
    [(m, n) for m, names in sorted(PUBLIC_MODULES.items()) for n in names],
)
def test_every_public_name_has_a_docstring(module_name: str, name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__
    value = getattr(module, name)
    if inspect.isclass(value) or inspect.isfunction(value):
        assert inspect.getdoc(value), f"{module_name}.{name} has no docstring"


def _drawn_tree() -> dict[str, str]:
    """Each error's parent as ``flowrun.errors``' docstring draws it."""
    parents: dict[str, str] = {}
    stack: list[str] = []
    for line in (errors.__doc__ or "").splitlines():
        text = line.strip()
        if text == "FlowrunError":
            stack = ["FlowrunError"]
            continue
        if not stack or not text or text[0] not in "├└│":
            continue
        branch = max(line.find("├── "), line.find("└── "))
        if branch < 0:
            continue
        depth = (branch - line.index(text[0])) // 4 + 1
        name = line[branch + 4 :].split()[0]
        del stack[depth:]
        parents[name] = stack[-1]
        stack.append(name)
    return parents


def _all_subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    sub: type
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def test_the_error_tree_is_drawn_once_and_whole() -> None:
    # Every FlowrunError subclass anywhere in flowrun lives in flowrun.errors, is exported
    # there, and stands in the drawn tree under its real parent.
    drawn = _drawn_tree()
    actual = {
        cls.__name__: cls
        for cls in _all_subclasses(errors.FlowrunError)
        if cls.__module__.startswith("flowrun")
    }
    assert {cls.__module__ for cls in actual.values()} == {"flowrun.errors"}
    assert set(actual) == set(drawn)
    assert set(actual) | {"FlowrunError"} == set(errors.__all__)
    for name, cls in actual.items():
        flowrun_bases = [b for b in cls.__bases__ if issubclass(b, errors.FlowrunError)]
        assert [b.__name__ for b in flowrun_bases] == [drawn[name]], name


def test_the_error_tree() -> None:
    categories = {
        "TaskDefinitionError": TypeError,
        "TaskSignatureError": TypeError,
        "InvalidDependencyError": TypeError,
        "InvalidOptionError": ValueError,
        "InvalidTimeoutError": ValueError,
        "InvalidRetriesError": ValueError,
        "InvalidMaxParallelError": ValueError,
        "InvalidResourceError": ValueError,
        "DuplicateTaskError": ValueError,
        "MissingDependencyError": LookupError,
        "CycleError": ValueError,
        "SelfDependencyError": ValueError,
        "UnknownTaskError": LookupError,
        "UnknownRunError": LookupError,
        "RunFinalizedError": RuntimeError,
        "TaskFailedError": errors.FlowrunError,
        "TaskTimeoutError": TimeoutError,
        "GeneratorProtocolError": RuntimeError,
    }
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.FlowrunError)
        if name != "FlowrunError":
            assert issubclass(cls, categories[name]), name
            doc = inspect.getdoc(cls) or ""
            assert doc.startswith(("Raised when", "Recorded as")), name
            assert name in (errors.__doc__ or ""), f"{name} missing from the drawn error tree"


@pytest.mark.parametrize(
    ("module_name", "name"),
    [
        ("flowrun.scheduler", "TaskFailedError"),
        ("flowrun.state", "RunFinalizedError"),
        ("flowrun.executor", "GeneratorProtocolError"),
    ],
)
def test_errors_moved_to_flowrun_errors_keep_their_old_import_path(
    module_name: str, name: str
) -> None:
    assert getattr(importlib.import_module(module_name), name) is getattr(errors, name)


def test_lookup_errors_do_not_quote_their_message() -> None:
    # Only KeyError quotes its message; LookupError subclasses print it as it is.
    error = errors.UnknownTaskError("fetch_usr", ["fetch_user"])
    assert str(error) == "no task named 'fetch_usr' (did you mean 'fetch_user'?)"


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    assert flowrun.__version__ == version("flowrun")


def test_importing_flowrun_starts_no_threads_loops_or_pools() -> None:
    code = (
        "import asyncio, threading, sys\n"
        "import flowrun, flowrun.engine, flowrun.executor, flowrun.scheduler\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "assert asyncio.events._get_running_loop() is None\n"
        "assert 'concurrent.futures.process' not in sys.modules\n"
        "print('clean')\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "clean\n"
