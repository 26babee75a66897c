"""Target 8: the plugin's fixed cost on a one-task suite, with and without bytecode caching.

The same one-test suite twice: its session setup written as a flowrun task (``@task`` in
the conftest), and as a plain session fixture. Whole-process wall time of ``pytest``,
paired runs alternating which side goes first, median of the paired ratios; once with
the interpreter's bytecode cache and once with ``PYTHONDONTWRITEBYTECODE=1`` (CI images
often set it: then every start compiles what it imports, pytest's assert rewriting of the
plugin's distribution included). The uncached pass imports both packages from a copy
without ``__pycache__`` (``_uncompiled_copy``), so it compiles them at every start as a
fresh CI checkout does; the standard library and the other installed packages keep their
bytecode, as they do in a CI image.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bench._common import Result, Settings, median, median_of_ratios
from bench.pytest_suite import _env, _not_run, plugin_available, run_pytest

TASK = "from flowrun import task\n\n\n@task\ndef db():\n    return 'db'\n"
FIXTURE = "import pytest\n\n\n@pytest.fixture(scope='session')\ndef db():\n    return 'db'\n"
TEST = "def test_db(db):\n    assert db == 'db'\n"


def _write(root: Path, conftest: str) -> Path:
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "conftest.py").write_text(conftest)
    (root / "test_one.py").write_text(TEST)
    return root


def _run(root: Path, env: dict[str, str]) -> float:
    """Whole-process wall seconds of one ``pytest`` run of the suite in ``root``."""
    return run_pytest(root, "-p", "no:cacheprovider", str(root), env=env)[0]


def _uncompiled_copy(into: Path) -> str:
    """Copy ``flowrun`` and ``pytest_flowrun`` without their ``__pycache__`` into ``into``,
    for ``PYTHONPATH``: under ``PYTHONDONTWRITEBYTECODE=1`` every start then compiles them,
    as a CI job does on a fresh checkout. (The checkout's own ``__pycache__``, written by
    the cached pass or by any earlier run, would be read instead.)"""
    root = Path(__file__).resolve().parent.parent
    for package in ("flowrun", "pytest_flowrun"):
        shutil.copytree(
            root / package, into / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return str(into)


def target_8(settings: Settings) -> list[Result]:
    """Target 8: one-task suite / the same with a plain session fixture."""
    figure = "plugin fixed cost: one-task suite / plain fixture"
    why = plugin_available()
    if why is not None:
        return [_not_run("8", figure, why)]
    pairs = 6 if settings.quick else 20
    rows = []
    with tempfile.TemporaryDirectory(prefix="flowrun-bench-") as tmp:
        task_root = _write(Path(tmp, "task"), TASK)
        plain_root = _write(Path(tmp, "plain"), FIXTURE)
        for label, dont_write in (("bytecode cached", False), ("PYTHONDONTWRITEBYTECODE=1", True)):
            env = _env()
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            if dont_write:
                env["PYTHONDONTWRITEBYTECODE"] = "1"
                source = _uncompiled_copy(Path(tmp, "source"))
                env["PYTHONPATH"] = os.pathsep.join(
                    p for p in (source, env.get("PYTHONPATH", "")) if p
                )
            _run(task_root, env)  # warm: caches and the file system
            _run(plain_root, env)
            tasks: list[float] = []
            plain: list[float] = []
            for i in range(pairs):
                sides = [(tasks, task_root), (plain, plain_root)]
                for walls, root in sides if i % 2 == 0 else sides[::-1]:
                    walls.append(_run(root, env))
            rows.append(
                Result(
                    "8",
                    f"{figure}, {label}",
                    median_of_ratios(tasks, plain),
                    1.05,
                    note=f"median of {pairs} paired whole-process runs",
                    details={"task_s": median(tasks), "plain_s": median(plain), "pairs": pairs},
                )
            )
    return rows
