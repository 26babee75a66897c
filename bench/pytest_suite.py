"""Targets 4-6: the pytest plugin on the synthetic suite of ``bench.suite``.

Each pytest run is a subprocess (``python -m pytest``) in a temporary project, timed from
the outside; the setup span comes from the plugin's JSON report (``--flowrun-report``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    import resource
except ImportError:  # not on Windows: CPU times are then reported as 0
    resource = None  # type: ignore[assignment]

from bench._common import Result, Settings, median, median_of_ratios
from bench.suite import Suite, make_suite, write_plain_suite, write_suite

VARIANTS = ("sync", "async")
UNAVAILABLE = "not run: plugin unavailable"


class PluginUnavailable(RuntimeError):
    """Raised when a run under the plugin fails or writes no report."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        env.pop(name, None)
    for name in [n for n in env if n.startswith("PYTEST_XDIST_")]:
        del env[name]  # run from an xdist worker, the child must not think it is one too
    return env


def _children_cpu_s() -> float:
    if resource is None:
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: CPU seconds (user + system) of the last ``run_pytest`` subprocess; 0 where unknown.
last_cpu_s = 0.0


def run_pytest(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run pytest in ``root`` (in ``env``, by default ``_env()``); (wall seconds, output).
    Raises if pytest does not pass."""
    global last_cpu_s
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args]
    cpu = _children_cpu_s()
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=root, env=env or _env(), capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    last_cpu_s = _children_cpu_s() - cpu
    output = done.stdout + done.stderr
    if done.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise PluginUnavailable(f"pytest {' '.join(args)} exited {done.returncode}:\n{tail}")
    return wall, output


def run_flowrun(root: Path, *args: str) -> tuple[float, dict[str, Any]]:
    """A run under the plugin: (wall seconds, its JSON report)."""
    report = root / "flowrun-report.json"
    report.unlink(missing_ok=True)
    wall, _ = run_pytest(root, "-p", "flowrun", "--flowrun-report", str(report), *args)
    if not report.exists():
        raise PluginUnavailable("the plugin wrote no report")
    data: dict[str, Any] = json.loads(report.read_text())
    if data.get("counts", {}).get("SUCCESS") != 40:
        raise PluginUnavailable(f"the setup run did not succeed: {data.get('counts')}")
    return wall, data


def plugin_available() -> str | None:
    """None if ``-p flowrun`` loads, else why not."""
    try:
        import pytest_flowrun.plugin as plugin
    except ImportError as exc:
        return f"{UNAVAILABLE} ({exc})"
    if not hasattr(plugin, "pytest_addoption"):
        return UNAVAILABLE
    return None


def _not_run(target: str, figure: str, why: str) -> Result:
    return Result(target, figure, None, None, note=why)


def target_4(settings: Settings) -> list[Result]:
    """Setup span and pytest wall of the full-concurrency plugin run, plain pytest beside it."""
    why = plugin_available()
    if why is not None:
        return [_not_run("4", "setup span / critical path", why)]
    suite = make_suite()
    cp = suite.critical_path_s
    reps = 1 if settings.quick else 7
    rows: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="flowrun-bench-") as tmp:
        for variant in VARIANTS:
            real = write_suite(Path(tmp, variant), suite, variant=variant)
            zero = write_suite(Path(tmp, f"{variant}-zero"), suite, variant=variant, scale=0.0)
            spans: list[float] = []
            walls: list[float] = []
            zero_walls: list[float] = []
            plain_walls: list[float] = []
            # Plain pytest's serial wall (about 10 s) is informative: timed once per variant,
            # and in quick mode for the sync variant only.
            plain = variant == "sync" or not settings.quick
            try:
                run_pytest(real, "--collect-only")  # write the bytecode caches first
                run_flowrun(zero)
                for rep in range(reps):
                    if rep % 2:
                        zero_walls.append(run_flowrun(zero)[0])
                    wall, report = run_flowrun(real)
                    walls.append(wall)
                    spans.append(report["setup_span_s"])
                    if not rep % 2:
                        zero_walls.append(run_flowrun(zero)[0])
                if plain:
                    plain_walls.append(run_pytest(real, "-p", "no:flowrun")[0])
            except PluginUnavailable as exc:
                return [_not_run("4", f"setup span / critical path ({variant})", f"{exc}")]
            rows.append(
                Result(
                    "4",
                    f"setup span / critical path ({variant})",
                    median(spans) / cp,
                    1.03,
                    details={"span_s": median(spans), "critical_path_s": cp, "reps": reps},
                )
            )
            rows.append(
                Result(
                    "4",
                    f"pytest wall / (zero-duration wall + critical path) ({variant})",
                    median_of_ratios(walls, [z + cp for z in zero_walls]),
                    1.05,
                    details={"wall_s": median(walls), "zero_wall_s": median(zero_walls)},
                )
            )
            if not plain:
                continue
            rows.append(
                Result(
                    "4",
                    f"plain pytest (-p no:flowrun) wall / critical path ({variant})",
                    median(plain_walls) / cp,
                    None,
                    note=f"serial setup for comparison; serial sum {suite.serial_s:.2f} s",
                    details={"plain_wall_s": median(plain_walls), "flowrun_wall_s": median(walls)},
                )
            )
    return rows


def target_5(settings: Settings) -> list[Result]:
    """The same suite under ``--flowrun-max-parallel 4``, after one warm-up run."""
    why = plugin_available()
    if why is not None:
        return [_not_run("5", "span / max(cp, serial/4), max_parallel=4", why)]
    suite: Suite = make_suite()
    bound = suite.lower_bound_s(4)
    reps = 1 if settings.quick else 3
    rows: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="flowrun-bench-") as tmp:
        for variant in VARIANTS:
            root = write_suite(Path(tmp, variant), suite, variant=variant)
            figure = f"span / max(cp, serial/4), max_parallel=4 ({variant})"
            try:
                run_flowrun(root, "--flowrun-max-parallel", "4")  # fills the durations cache
                spans = [
                    run_flowrun(root, "--flowrun-max-parallel", "4")[1]["setup_span_s"]
                    for _ in range(reps)
                ]
            except PluginUnavailable as exc:
                return [_not_run("5", figure, str(exc))]
            rows.append(
                Result(
                    "5",
                    figure,
                    median(spans) / bound,
                    1.10,
                    note="measured after one warm-up run that stores observed durations "
                    "in pytest's cache (the scheduler starts the longest remaining path first)",
                    details={"span_s": median(spans), "lower_bound_s": bound, "reps": reps},
                )
            )
    return rows


def target_6(settings: Settings) -> list[Result]:
    """Idle cost: 2,000 tests without tasks, plugin loaded vs ``-p no:flowrun``."""
    figure = "idle: 2,000 tests, plugin loaded / -p no:flowrun"
    why = plugin_available()
    if why is not None:
        return [_not_run("6", figure, why)]
    pairs = 4 if settings.quick else 15
    loaded: list[float] = []
    unloaded: list[float] = []
    loaded_cpu: list[float] = []
    unloaded_cpu: list[float] = []
    with tempfile.TemporaryDirectory(prefix="flowrun-bench-") as tmp:
        root = write_plain_suite(Path(tmp, "plain"))
        args = ("-p", "no:cacheprovider")
        run_pytest(root, *args)  # warm the file system and bytecode caches
        for i in range(pairs):
            sides = [
                (loaded, loaded_cpu, ("-p", "flowrun")),
                (unloaded, unloaded_cpu, ("-p", "no:flowrun")),
            ]
            for walls, cpus, extra in sides if i % 2 == 0 else sides[::-1]:
                walls.append(run_pytest(root, *args, *extra)[0])
                cpus.append(last_cpu_s)
    rows = [
        Result(
            "6",
            figure,
            median_of_ratios(loaded, unloaded),
            1.02,
            note=f"median of {pairs} paired runs",
            details={"loaded_s": median(loaded), "unloaded_s": median(unloaded), "pairs": pairs},
        )
    ]
    if all(unloaded_cpu):
        rows.append(
            Result(
                "6",
                "idle, CPU time of the pytest process: loaded / -p no:flowrun",
                median_of_ratios(loaded_cpu, unloaded_cpu),
                None,
                note="the same pairs timed in CPU seconds, which a busy machine disturbs less",
                details={
                    "loaded_cpu_s": median(loaded_cpu),
                    "unloaded_cpu_s": median(unloaded_cpu),
                },
            )
        )
    return rows
