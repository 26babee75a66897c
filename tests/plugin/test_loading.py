"""Loading: by entry point, by ``-p flowrun`` without autoload, and off with ``-p no:flowrun``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ._suite import Suite

SETUP_STEP = """
    from flowrun import task

    @task
    def db():
        return "db"
"""

TASK_FIXTURE = """
    import pytest
    from flowrun import task

    @task
    @pytest.fixture(scope="session")
    def api(tmp_path_factory):
        return "api"
"""

USES_BOTH = """
    def test_both(db, api):
        assert (db, api) == ("db", "api")
"""


def test_the_entry_point_loads_the_plugin(suite: Suite) -> None:
    suite.conftest(SETUP_STEP + TASK_FIXTURE)
    suite.tests(USES_BOTH)
    result = suite.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["flowrun: 2 tasks run, 0 failed, 0 skipped; setup *"])


def test_the_entry_point_is_named_flowrun(suite: Suite) -> None:
    suite.tests(
        """
        def test_registered(pytestconfig):
            import pytest_flowrun.plugin
            assert pytestconfig.pluginmanager.get_plugin("flowrun") is pytest_flowrun.plugin
        """
    )
    suite.run().assert_outcomes(passed=1)


def test_without_autoload_dash_p_flowrun_loads_it(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    suite.conftest(SETUP_STEP + TASK_FIXTURE)
    suite.tests(USES_BOTH)
    result = suite.run_subprocess("-p", "flowrun")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["flowrun: 2 tasks run, *"])


def test_without_autoload_and_without_dash_p_setup_steps_are_absent(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    suite.conftest(SETUP_STEP)
    suite.tests("def test_db(db): pass\n")
    result = suite.run_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'db' not found*"])


def test_dash_p_no_flowrun_leaves_setup_steps_absent(suite: Suite) -> None:
    suite.conftest(SETUP_STEP)
    suite.tests("def test_db(db): pass\n")
    result = suite.run("-p", "no:flowrun")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'db' not found*"])
    result.stdout.no_fnmatch_line("*flowrun: *")


def test_dash_p_no_flowrun_makes_task_fixtures_ordinary_serial_fixtures(suite: Suite) -> None:
    suite.conftest(
        """
        import pytest
        from flowrun import task

        @task
        @pytest.fixture(scope="session")
        def first():
            log("first")
            return 1

        @task
        @pytest.fixture(scope="session")
        def second(first):
            log("second")
            return first + 1
        """
    )
    suite.tests("def test_second(second):\n    assert second == 2\n")
    result = suite.run("-p", "no:flowrun")
    result.assert_outcomes(passed=1)
    assert suite.log() == ["first", "second"]
    result.stdout.no_fnmatch_line("*flowrun: *")


def test_a_suite_without_tasks_sees_nothing_of_the_plugin(suite: Suite) -> None:
    suite.tests("def test_plain(): pass\n")
    result = suite.run()
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("flowrun*")
    result.stdout.no_fnmatch_line("*= flowrun =*")


def test_the_context_hook_is_declared(suite: Suite) -> None:
    suite.tests(
        """
        def test_hook(pytestconfig):
            assert hasattr(pytestconfig.hook, "pytest_flowrun_context")
        """
    )
    suite.run().assert_outcomes(passed=1)


def test_the_plugin_recognises_tasks_by_flowrun_s_own_attribute() -> None:
    import importlib

    from pytest_flowrun import _names, plugin

    # Through vars(): neither module re-exports the name it imports (and the package's
    # ``flowrun.task`` attribute is the decorator, not the module).
    runtime = importlib.import_module("flowrun.task")
    assert (
        _names.SPEC_ATTRIBUTE == vars(plugin)["SPEC_ATTRIBUTE"] == vars(runtime)["SPEC_ATTRIBUTE"]
    )


def test_the_plugin_s_default_max_parallel_is_the_runtime_s() -> None:
    from flowrun.scheduler import SchedulerConfig
    from pytest_flowrun._options import DEFAULT_MAX_PARALLEL, Settings

    assert Settings().max_parallel == DEFAULT_MAX_PARALLEL == SchedulerConfig().max_parallel


def test_importing_the_plugin_imports_neither_the_runtime_nor_asyncio(
    pytester: pytest.Pytester,
) -> None:
    heavy = ("flowrun", "asyncio", *(f"pytest_flowrun.{m}" for m in _LAZY_MODULES))
    result = pytester.run(
        sys.executable,
        "-c",
        "import sys, pytest_flowrun.plugin; "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))",
    )
    assert result.stdout.lines[-1] == "[]"


#: The plugin's modules that ``plugin`` imports only once a suite has tasks (or xdist).
_LAZY_MODULES = (
    "_borrowed_loop",
    "_borrowed_portal",
    "_discovery",
    "_durations",
    "_dynamic",
    "_interop",
    "_launch",
    "_markdown",
    "_mermaid",
    "_once",
    "_outcomes",
    "_params",
    "_portal",
    "_progress",
    "_promote",
    "_redact",
    "_remote",
    "_report",
    "_selection",
    "_session",
    "_summary",
    "_terminal",
    "_tracebacks",
    "_wire",
    "_xdist",
)

#: Written into a suite's conftest: at the end of the session, the modules of flowrun's two
#: packages that the session imported, one a line, in ``imported.txt``.
RECORD_IMPORTS = """
    import sys

    import pytest

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(config):
        names = [m for m in sys.modules if m.partition(".")[0] in ("flowrun", "pytest_flowrun")]
        (config.rootpath / "imported.txt").write_text("\\n".join(sorted(names)))
"""

#: What a session with one sync task and one test imports of the plugin, without
#: pytest-xdist: each lazy module is left out unless the session uses it.
ONE_TASK_SESSION = {
    "pytest_flowrun",
    "pytest_flowrun.plugin",
    "pytest_flowrun.hooks",
    *(
        f"pytest_flowrun.{m}"
        for m in (
            "_imports",
            "_names",
            "_options",
            "_discovery",
            "_durations",
            "_dynamic",
            "_interop",
            "_launch",
            "_outcomes",
            "_portal",
            "_progress",  # a live display is possible (not on an xdist worker)
            "_redact",
            "_report",
            "_selection",
            "_session",
            "_signals",
            "_summary",
            "_terminal",
        )
    ),
}
#: What the xdist controller's hooks import in every session (xdist installed, no -n).
XDIST_CONTROLLER = {f"pytest_flowrun.{m}" for m in ("_xdist", "_report", "_redact")}


def _imported(suite: Suite, *args: str) -> set[str]:
    """Run the suite in a fresh interpreter; the modules of flowrun's packages it imported."""
    suite.run_subprocess("-p", "no:cacheprovider", *args).assert_outcomes(passed=1)
    return set((suite.path / "imported.txt").read_text(encoding="utf-8").splitlines())


def test_a_one_task_session_imports_only_the_plugin_modules_it_uses(suite: Suite) -> None:
    suite.conftest(SETUP_STEP + RECORD_IMPORTS)
    suite.tests("def test_db(db):\n    assert db == 'db'\n")
    imported = _imported(suite, "-p", "no:xdist")
    assert {m for m in imported if m.startswith("pytest_flowrun")} == ONE_TASK_SESSION
    # Not the modes, displays and files it does not use, nor a pool it does not run.
    assert "flowrun.engine" in imported  # flowrun's __init__ re-exports it
    assert {
        "pytest_flowrun._borrowed_loop",  # --flowrun-loop asyncio-session only
        "pytest_flowrun._borrowed_portal",
        "pytest_flowrun._markdown",  # a Markdown summary only
        "pytest_flowrun._mermaid",
        "pytest_flowrun._params",  # parametrized items only
        "pytest_flowrun._promote",  # promoted fixtures only
        "pytest_flowrun._once",  # --flowrun-xdist once only
    }.isdisjoint(imported)


def test_a_session_without_tasks_imports_neither_the_runtime_nor_the_session(
    suite: Suite,
) -> None:
    suite.conftest(RECORD_IMPORTS)
    suite.tests("def test_plain():\n    pass\n")
    base = {"pytest_flowrun", "pytest_flowrun.plugin", "pytest_flowrun.hooks"}
    base |= {f"pytest_flowrun.{m}" for m in ("_imports", "_names", "_options")}
    assert _imported(suite, "-p", "no:xdist") == base
    with_xdist = base | XDIST_CONTROLLER if _installed("xdist") else base
    assert _imported(suite) == with_xdist  # nothing to print or write: no _terminal, _summary


#: Written into a suite's conftest: at the end of the session, how each module of flowrun's
#: two packages was loaded and from where, one ``module loader file`` a line.
RECORD_LOADERS = """
    import sys

    import pytest

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(config):
        lines = [
            f"{name} {type(module.__loader__).__name__} {module.__file__}"
            for name, module in sorted(sys.modules.items())
            if name.partition(".")[0] in ("flowrun", "pytest_flowrun")
        ]
        (config.rootpath / "loaders.txt").write_text("\\n".join(lines))
"""
#: What pytest imports before the plugin can act: the entry point, its package and the
#: finder's module (see ``_imports``). Everything else is imported as Python does.
IMPORTED_BY_PYTEST = {"pytest_flowrun", "pytest_flowrun.plugin", "pytest_flowrun._imports"}


def _loaders(suite: Suite) -> dict[str, tuple[str, str]]:
    """Each module of flowrun's packages the suite's session imported: (loader, file)."""
    lines = (suite.path / "loaders.txt").read_text(encoding="utf-8").splitlines()
    return {name: (loader, file) for name, loader, file in (line.split() for line in lines)}


def test_flowrun_is_imported_without_assert_rewriting_and_without_a_warning(
    suite: Suite,
) -> None:
    # pytest rewrites every module of a pytest11 distribution; with
    # PYTHONDONTWRITEBYTECODE=1 it redid that at every start (see _imports).
    suite.conftest(SETUP_STEP + RECORD_LOADERS)
    suite.tests("def test_db(db):\n    assert db == 'db'\n")
    result = suite.run_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=1)
    loaders = _loaders(suite)
    assert "flowrun._run" in loaders
    rewritten = {name for name, (loader, _) in loaders.items() if loader != "SourceFileLoader"}
    assert rewritten == IMPORTED_BY_PYTEST


@pytest.mark.slow
def test_a_wheel_install_is_imported_as_pip_installed_it_and_warning_free(
    suite: Suite, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from bench.fixed_cost import _installed_wheel  # builds and pip-installs the wheel

    try:
        site = _installed_wheel(tmp_path_factory.mktemp("wheel"))
    except RuntimeError as exc:  # no build backend to be had (offline): nothing to check
        pytest.skip(str(exc))
    assert list(Path(site, "flowrun", "__pycache__").glob("_run.*.pyc"))  # pip compiled it
    suite.conftest(SETUP_STEP + RECORD_LOADERS)
    suite.tests("def test_db(db):\n    assert db == 'db'\n")
    env = {**os.environ, "PYTHONPATH": site, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    # Two sessions in one process, warnings as errors: the second one's pytest marks the
    # packages for rewriting again while they are imported already (PYTEST_DONT_REWRITE).
    args = ["-q", "-p", "no:cacheprovider", "-W", "error"]
    code = f"import sys, pytest; sys.exit(max(pytest.main({args!r}) for _ in range(2)))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=suite.path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    loaders = _loaders(suite)
    assert all(file.startswith(site) for _, file in loaders.values())
    rewritten = {name for name, (loader, _) in loaders.items() if loader != "SourceFileLoader"}
    assert rewritten == IMPORTED_BY_PYTEST


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _plugin_imports(module: str) -> set[str]:
    """The ``pytest_flowrun`` modules that ``pytest_flowrun/<module>.py`` imports, anywhere."""
    import ast

    import pytest_flowrun

    source = Path(pytest_flowrun.__file__).parent / f"{module}.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "pytest_flowrun":
            found.update(f"pytest_flowrun.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pytest_flowrun"):
            found.add(str(node.module))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pytest_flowrun"))
    return found


@pytest.mark.parametrize("module", ["_imports", "_names", "_options", "hooks", *_LAZY_MODULES])
def test_no_module_of_the_plugin_imports_plugin_py_back(module: str) -> None:
    assert "pytest_flowrun.plugin" not in _plugin_imports(module)


@pytest.mark.parametrize("module", ["_imports", "_names", "_options", "hooks"])
def test_the_modules_plugin_py_loads_at_import_import_nothing_of_the_plugin(module: str) -> None:
    assert _plugin_imports(module) == set()


def test_two_sessions_in_one_process_both_find_the_tasks(suite: Suite) -> None:
    (suite.path / "setup_plugin.py").write_text(
        "import pytest\n"
        "from flowrun import task\n\n"
        "@task\n"
        "def db():\n    return 'db'\n\n"
        "@task\n"
        "@pytest.fixture(scope='session')\n"
        "def api(db):\n    return 'api on ' + db\n"
    )
    suite.conftest('pytest_plugins = ["setup_plugin"]\n')
    suite.tests("def test_api(api):\n    assert api == 'api on db'\n")
    result = suite.pytester.run(
        sys.executable,
        "-c",
        "import sys, pytest; "
        "codes = [pytest.main(['-q', '-p', 'no:cacheprovider']) for _ in range(2)]; "
        "sys.exit(max(codes))",
    )
    assert result.ret == 0, result.stdout.str()
    assert result.stdout.str().count("flowrun: 2 tasks run, 0 failed") == 2
