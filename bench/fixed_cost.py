"""Target 8: the plugin's fixed cost on a one-task suite, with and without bytecode caching.

The same one-test suite twice: its session setup written as a flowrun task (``@task`` in
the conftest), and as a plain session fixture. Whole-process wall time of ``pytest``,
paired runs alternating which side goes first, median of the paired ratios. Three passes:

- **bytecode cached**: the checkout as it is, the interpreter writing and reading its
  bytecode cache;
- **PYTHONDONTWRITEBYTECODE=1, installed from a wheel**: what a CI job that installs
  flowrun and sets the variable (CI images often do) pays at every start. flowrun is
  built into a wheel and installed with ``pip install --target`` (``_installed_wheel``),
  so its modules have the bytecode pip compiles at install, as a user's have; the
  suites import both packages from there. This is the target's pass.
- **PYTHONDONTWRITEBYTECODE=1, source checkout**: both packages imported from a copy
  without ``__pycache__`` (``_uncompiled_copy``), so every start compiles them: what
  flowrun's own CI pays on a fresh clone (information).

The standard library and the other installed packages keep their bytecode throughout, as
they do in a CI image. Building the wheel needs the build backend (pip fetches it); if
that fails, the pass is reported as not run, with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import pytest_suite
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


def _run(root: Path, env: dict[str, str]) -> tuple[float, float]:
    """Whole-process wall and CPU seconds of one ``pytest`` run of the suite in ``root``."""
    wall = run_pytest(root, "-p", "no:cacheprovider", str(root), env=env)[0]
    return wall, pytest_suite.last_cpu_s


_ROOT = Path(__file__).resolve().parent.parent


def _uncompiled_copy(into: Path) -> str:
    """Copy ``flowrun`` and ``pytest_flowrun`` without their ``__pycache__`` into ``into``,
    for ``PYTHONPATH``: under ``PYTHONDONTWRITEBYTECODE=1`` every start then compiles them,
    as a CI job does on a fresh checkout. (The checkout's own ``__pycache__``, written by
    the cached pass or by any earlier run, would be read instead.)"""
    for package in ("flowrun", "pytest_flowrun"):
        shutil.copytree(
            _ROOT / package, into / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return str(into)


def _installed_wheel(into: Path) -> str:
    """Build flowrun's wheel and ``pip install --target`` it into ``into``, for
    ``PYTHONPATH``: the packages with the bytecode pip compiles at install, and the
    distribution's metadata (its ``pytest11`` entry point) beside them. Raises
    ``RuntimeError`` with pip's last lines if either step fails."""
    wheels, target = into / "wheels", into / "site"
    _pip("wheel", "--no-deps", "--wheel-dir", str(wheels), str(_ROOT))
    _pip("install", "--no-deps", "--target", str(target), *map(str, wheels.glob("*.whl")))
    return str(target)


def _pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--quiet", *args], capture_output=True, text=True
    )
    if done.returncode != 0:
        tail = " / ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise RuntimeError(f"pip {args[0]} failed: {tail}")


def _pass_env(pass_: str, tmp: Path) -> dict[str, str]:
    """The environment of one pass (see the module docstring); raises ``RuntimeError``
    if the wheel cannot be built."""
    env = _env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if pass_ == _CACHED:
        return env
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if pass_ == _WHEEL:
        source = _installed_wheel(tmp / "wheel")
    else:
        source = _uncompiled_copy(tmp / "source")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH", "")) if p)
    return env


_CACHED = "bytecode cached"
_WHEEL = "PYTHONDONTWRITEBYTECODE=1, installed from a wheel"
_CHECKOUT = "PYTHONDONTWRITEBYTECODE=1, source checkout"
#: Each pass, and its bound (None: information).
_PASSES = ((_CACHED, 1.05), (_WHEEL, 1.05), (_CHECKOUT, None))


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
        for label, limit in _PASSES:
            try:
                env = _pass_env(label, Path(tmp))
            except RuntimeError as exc:
                rows.append(_not_run("8", f"{figure}, {label}", str(exc)))
                continue
            _run(task_root, env)  # warm: caches and the file system
            _run(plain_root, env)
            tasks: list[tuple[float, float]] = []
            plain: list[tuple[float, float]] = []
            for i in range(pairs):
                sides = [(tasks, task_root), (plain, plain_root)]
                for runs, root in sides if i % 2 == 0 else sides[::-1]:
                    runs.append(_run(root, env))
            walls = [t for t, _ in tasks], [p for p, _ in plain]
            cpus = [t for _, t in tasks], [p for _, p in plain]
            rows.append(
                Result(
                    "8",
                    f"{figure}, {label}",
                    median_of_ratios(*walls),
                    limit,
                    note=f"median of {pairs} paired whole-process runs",
                    details={
                        "task_s": median(walls[0]),
                        "plain_s": median(walls[1]),
                        "pairs": pairs,
                    },
                )
            )
            if all(cpus[1]):
                rows.append(
                    Result(
                        "8",
                        f"{figure}, {label}, CPU time of the pytest process",
                        median_of_ratios(*cpus),
                        None,
                        note="the same pairs in CPU seconds, which a busy machine disturbs less",
                        details={"task_cpu_s": median(cpus[0]), "plain_cpu_s": median(cpus[1])},
                    )
                )
    return rows
