"""The shape of both packages: small modules and classes, imports that flow one way.

Read from the source with ``ast``: no module over 400 lines, no class over 300, every
module with a docstring, and no import cycle between a package's modules. Imports under
``if TYPE_CHECKING:`` are for the type checker only and do not count; imports inside
functions do (a cycle that works only because one side imports lazily is still a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("flowrun", "pytest_flowrun")
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 300


def modules(package: str) -> dict[str, Path]:
    return {
        f"{package}.{path.stem}" if path.stem != "__init__" else package: path
        for path in sorted((ROOT / package).glob("*.py"))
    }


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(tree: ast.Module, package: str, known: set[str]) -> set[str]:
    """The modules of ``package`` that a module imports, at run time."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in known:
                found.add(node.module)
            found.update(
                f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known
            )
        for inner in ast.iter_child_nodes(node):
            visit(inner)

    visit(tree)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_400_lines_and_each_says_what_it_holds(package: str) -> None:
    for name, path in modules(package).items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= MAX_MODULE_LINES, f"{name} has {lines} lines"
        assert ast.get_docstring(parse(path)), f"{name} has no docstring"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_class_is_over_300_lines(package: str) -> None:
    for name, path in modules(package).items():
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                assert lines <= MAX_CLASS_LINES, f"{name}.{node.name} has {lines} lines"


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_between_a_packages_modules_have_no_cycle(package: str) -> None:
    found = modules(package)
    known = set(found)
    graph = {
        name: imports_of(parse(path), package, known) - {name, package}
        for name, path in found.items()
        if name != package  # __init__ re-exports everything: it sits on top
    }
    # Kahn's algorithm: whatever cannot be ordered lies on a cycle.
    waiting = {name: len(deps) for name, deps in graph.items()}
    users: dict[str, list[str]] = {name: [] for name in graph}
    for name, deps in graph.items():
        for dep in deps:
            users[dep].append(name)
    ready = [name for name, count in waiting.items() if not count]
    while ready:
        name = ready.pop()
        for user in users[name]:
            waiting[user] -= 1
            if not waiting[user]:
                ready.append(user)
    on_cycles = sorted(name for name, count in waiting.items() if count)
    assert not on_cycles, {name: sorted(graph[name]) for name in on_cycles}


def test_the_plugin_imports_the_runtime_but_never_the_reverse() -> None:
    for name, path in modules("flowrun").items():
        tree = parse(path)
        assert not imports_of(tree, "pytest_flowrun", set(modules("pytest_flowrun"))), name
        assert "pytest" not in imports_of(tree, "pytest", {"pytest"}), name
