"""Reporting: the summary line, ``--flowrun-dag``, the JSON report and the header."""

from __future__ import annotations

import asyncio
import contextlib
import re

from ._suite import Suite

DIAMOND = """
    import asyncio
    from flowrun import task

    @task
    async def db():
        await asyncio.sleep(0.2)

    @task
    async def api():
        await asyncio.sleep(0.1)

    @task(deps=[db, api])
    async def seed():
        await asyncio.sleep(0.1)

    @task(deps=[db])
    def broken():
        raise KeyError("missing")

    @task
    def unused():
        pass
"""

DIAMOND_TESTS = """
    def test_seed(seed): pass
    def test_broken(broken): pass
"""


def test_the_summary_line_gives_counts_wall_time_serial_time_and_speed_up(suite: Suite) -> None:
    suite.conftest(DIAMOND)
    suite.tests(DIAMOND_TESTS)
    result = suite.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*= flowrun =*",
            "flowrun: 4 tasks run, 1 failed, 0 skipped; setup *s, serial *s, *x speed-up",
            "task 'broken' FAILED after 1 attempt: KeyError: 'missing'",
        ]
    )
    line = next(x for x in result.outlines if x.startswith("flowrun: 4 tasks run"))
    numbers = re.search(r"setup ([\d.]+)s, serial ([\d.]+)s, ([\d.]+)x", line)
    assert numbers is not None
    span, serial, speed_up = (float(n) for n in numbers.groups())
    assert serial > span
    assert abs(speed_up - serial / span) < 0.05 * speed_up + 0.02


def test_no_summary_when_no_task_ran(suite: Suite) -> None:
    suite.conftest(DIAMOND)
    suite.tests("def test_plain(): pass\n")
    result = suite.run()
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*= flowrun =*")


def test_flowrun_dag_prints_the_selected_dag_before_the_tests(suite: Suite) -> None:
    suite.conftest(DIAMOND)
    suite.tests(DIAMOND_TESTS)
    result = suite.run("--flowrun-dag", "-k", "seed")
    result.stdout.fnmatch_lines(
        [
            "collected 2 items / 1 deselected / 1 selected",
            "*- flowrun: setup DAG -*",
            "dag 'pytest-setup': 3 tasks in 2 levels",
            "  level 0",
            "    db (async)",
            "    api (async)",
            "  level 1",
            "    seed (async) <- db, api",
            "excluded by selection: broken, unused",
            "test_suite.py .*",
        ]
    )


def test_flowrun_dag_adds_a_per_task_table_and_the_critical_path(suite: Suite) -> None:
    suite.conftest(DIAMOND)
    suite.tests(DIAMOND_TESTS)
    result = suite.run("--flowrun-dag")
    result.stdout.fnmatch_lines(
        [
            "task * status * start * duration * attempts * error",
            "db * SUCCESS * 0.0*s * 0.2*s * 1",
            "api * SUCCESS * 0.0*s * 0.1*s * 1",
            "seed * SUCCESS * 0.2*s * 0.1*s * 1",
            "broken * FAILED * 0.2*s * *s * 1 * KeyError: 'missing'",
            "critical path: db -> seed (0.3*s)",
        ]
    )


def test_flowrun_report_writes_the_run_as_json(suite: Suite) -> None:
    suite.conftest(DIAMOND)
    suite.tests(DIAMOND_TESTS)
    suite.run("--flowrun-report=artifacts/setup.json", "--flowrun-max-parallel=3")
    report = suite.report("artifacts/setup.json")
    assert report["status"] == "FAILED"
    assert report["selected"] == ["db", "api", "seed", "broken"]
    assert report["excluded"] == ["unused"]
    assert report["max_parallel"] == 3
    assert report["critical_path"] == ["db", "seed"]
    assert report["counts"]["SUCCESS"] == 3
    broken = report["tasks"]["broken"]
    assert broken["status"] == "FAILED"
    assert broken["error"]["type"] == "KeyError"
    assert 'raise KeyError("missing")' in broken["error"]["traceback"]
    assert report["tasks"]["seed"]["deps"] == ["db", "api"]
    assert report["tasks"]["seed"]["offset_s"] >= report["tasks"]["db"]["duration_s"]


def test_the_report_path_in_the_ini_is_relative_to_the_ini_file(suite: Suite) -> None:
    suite.ini("flowrun_report = out/report.json", "flowrun_dag = true")
    suite.conftest(DIAMOND)
    suite.tests("def test_seed(seed): pass\n", name="tests/test_seed.py")
    result = suite.run("tests")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*- flowrun: setup DAG -*"])
    assert suite.report("out/report.json")["status"] == "SUCCESS"


def test_the_header_shows_the_options_when_set(suite: Suite) -> None:
    suite.tests("def test_plain(): pass\n")
    result = suite.run("--flowrun-max-parallel=4", "--flowrun-timeout=30")
    result.stdout.fnmatch_lines(["flowrun: max_parallel=4, timeout=30s"])
    suite.run().stdout.no_fnmatch_line("flowrun: max_parallel*")


def test_the_report_is_written_even_when_no_task_ran(suite: Suite) -> None:
    suite.conftest(DIAMOND)
    suite.tests("def test_plain(): pass\n")
    suite.run("--flowrun-report=report.json").assert_outcomes(passed=1)
    report = suite.report()
    assert (report["status"], report["tasks"], report["selected"]) == ("NOT_STARTED", {}, [])
    assert report["excluded"] == ["db", "api", "seed", "broken", "unused"]


def test_an_interrupted_run_claims_no_speed_up() -> None:
    """A cancelled run's span is cut short, so the line gives counts and times only."""
    from flowrun import TaskRegistry, build_default_engine, task
    from pytest_flowrun._terminal import summary_line

    registry = TaskRegistry()
    engine = build_default_engine(registry=registry)

    async def interrupted_run() -> str:
        quick_done = asyncio.Event()

        @task(registry=registry)
        async def quick() -> None:
            quick_done.set()

        @task(registry=registry)
        async def slow() -> None:
            await asyncio.sleep(30)

        running = asyncio.ensure_future(engine.run_once("setup"))
        await quick_done.wait()
        await asyncio.sleep(0.01)  # let the run record quick's success
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        assert engine.last_run_id is not None
        return engine.last_run_id

    line = summary_line(engine.get_run_report(asyncio.run(interrupted_run())))
    assert line.startswith(
        "flowrun: 2 tasks run, 0 failed, 0 skipped, 1 cancelled while running; setup "
    )
    assert "speed-up" not in line
