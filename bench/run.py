"""Run the benchmark suite, print the table and write it as JSON.

``python -m bench`` or ``python bench/run.py`` from the repository root; ``--quick`` is the
CI smoke run (it reports and never fails on timing).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the ``bench`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Result, Settings

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"


def _targets() -> dict[str, Callable[[Settings], list[Result]]]:
    from bench import fixed_cost, public, pytest_suite, runtime, xdist_once

    return {
        "1": runtime.target_1,
        "2": runtime.target_2,
        "3": runtime.target_3,
        "4": pytest_suite.target_4,
        "5": pytest_suite.target_5,
        "6": pytest_suite.target_6,
        "7": public.target_7,
        "8": fixed_cost.target_8,
        "9": xdist_once.target_9,
    }


def _mark(result: Result) -> str:
    if result.passed is None:
        return "info" if result.value is not None else "not run"
    return "pass" if result.passed else "MISS"


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.3f}x"
    if unit == "s":
        return f"{value:.2f} s"
    if value.is_integer():
        return f"{int(value):,} {unit}"
    if abs(value) < 100:
        return f"{value:.1f} {unit}"
    return f"{value:,.0f} {unit}"


def format_table(results: list[Result]) -> str:
    """The results as a fixed-width text table."""
    rows = [("#", "figure", "measured", "target", "mark")]
    for r in results:
        target = f"<= {_fmt(r.limit, r.unit)}" if r.limit is not None else "-"
        rows.append((r.target, r.figure, _fmt(r.value, r.unit), target, _mark(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for k, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    for r in results:
        if r.note:
            lines.append(f"  [{r.target}] {r.figure}: {r.note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 however the timings turn out (the table says pass or miss)."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (CI smoke run)")
    parser.add_argument(
        "--only", default="", help="comma-separated target numbers to run, e.g. 1,3"
    )
    parser.add_argument("--reps", type=int, default=None, help="repetitions per paired figure")
    parser.add_argument(
        "--json",
        default=str(DEFAULT_JSON),
        metavar="PATH",
        help="where to write the results as JSON (default: bench/results/latest.json)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if a target is missed or could not run"
    )
    args = parser.parse_args(argv)
    settings = Settings.make(args.quick, args.reps)
    targets = _targets()
    wanted = [t.strip() for t in args.only.split(",") if t.strip()] or list(targets)
    unknown = [t for t in wanted if t not in targets]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(targets)}")

    mode = "quick" if args.quick else "full"
    # The Python matters: from 3.12 on, attempts start eagerly (see the README).
    print(
        f"flowrun bench ({mode}, {settings.reps} reps), {os.cpu_count()} cpu(s), "
        f"Python {platform.python_version()}",
        flush=True,
    )
    if args.quick:
        print("quick mode: few repetitions, so a verdict near its target is indicative only")
    results: list[Result] = []
    started = time.perf_counter()
    for key in wanted:
        t0 = time.perf_counter()
        rows = targets[key](settings)
        results.extend(rows)
        for r in rows:
            print(f"  [{r.target}] {r.figure}: {_fmt(r.value, r.unit)} ({_mark(r)})", flush=True)
        print(f"  target {key} took {time.perf_counter() - t0:.1f} s", flush=True)
    elapsed = time.perf_counter() - started
    print()
    print(format_table(results))
    print(f"\n{elapsed:.1f} s in all")

    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "mode": mode,
        "reps": settings.reps,
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "elapsed_s": elapsed,
        "results": [r.as_dict() for r in results],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"results written to {path}")
    if args.strict and any(r.passed is not True for r in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
