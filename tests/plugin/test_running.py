"""Running: selection, concurrency, the max_parallel bound, timeouts, observed durations."""

from __future__ import annotations

import pytest

from ._suite import Suite

TWO_TASKS = """
    from flowrun import task

    @task
    def db():
        log("db")
        return "db"

    @task
    def redis():
        log("redis")
        return "redis"
"""

TWO_TESTS = """
    def test_unit():
        pass

    def test_db(db):
        assert db == "db"
"""


class TestSelection:
    def test_only_tasks_the_selected_tests_need_run(self, suite: Suite) -> None:
        suite.conftest(TWO_TASKS)
        suite.tests(TWO_TESTS)
        result = suite.run("-k", "db", "--flowrun-dag")
        result.assert_outcomes(passed=1, deselected=1)
        assert suite.log() == ["db"]
        result.stdout.fnmatch_lines(
            ["*flowrun: setup DAG*", "*db (sync)", "excluded by selection: redis"]
        )

    def test_a_selection_needing_no_task_starts_nothing(self, suite: Suite) -> None:
        suite.conftest(TWO_TASKS)
        suite.tests(TWO_TESTS)
        result = suite.run("-k", "unit")
        result.assert_outcomes(passed=1, deselected=1)
        assert suite.log() == []
        result.stdout.no_fnmatch_line("flowrun:*")

    def test_ancestors_of_needed_tasks_run_too(self, suite: Suite) -> None:
        suite.conftest(
            """
            from flowrun import task

            @task
            def a():
                log("a")

            @task(deps=[a])
            def b():
                log("b")

            @task
            def unrelated():
                log("unrelated")
            """
        )
        suite.tests("def test_b(b): pass\n")
        suite.run().assert_outcomes(passed=1)
        assert suite.log() == ["a", "b"]

    def test_collect_only_runs_nothing(self, suite: Suite) -> None:
        suite.conftest(TWO_TASKS)
        suite.tests(TWO_TESTS)
        result = suite.run("--collect-only")
        assert result.ret == pytest.ExitCode.OK
        assert suite.log() == []
        result.stdout.no_fnmatch_line("flowrun:*")

    def test_a_task_only_skipped_tests_need_is_cancelled_at_the_end_not_awaited(
        self, suite: Suite
    ) -> None:
        suite.conftest(
            """
            import asyncio
            from flowrun import task

            @task
            async def quick():
                return 1

            @task
            async def slow():
                await asyncio.sleep(30)
            """
        )
        suite.tests(
            """
            import pytest

            def test_quick(quick):
                pass

            @pytest.mark.skip(reason="not today")
            def test_slow(slow):
                pass
            """
        )
        result = suite.run("--flowrun-report=report.json")
        result.assert_outcomes(passed=1, skipped=1)
        assert result.ret == pytest.ExitCode.OK
        tasks = suite.report()["tasks"]
        assert (tasks["quick"]["status"], tasks["slow"]["status"]) == ("SUCCESS", "CANCELLED")
        result.stdout.fnmatch_lines(
            ["flowrun: 2 tasks run, 0 failed, 0 skipped, 1 cancelled while running;*"]
        )


class TestConcurrency:
    def test_independent_setup_overlaps(self, suite: Suite) -> None:
        suite.conftest(
            """
            import asyncio, time
            from flowrun import task

            @task
            async def api():
                await asyncio.sleep(0.3)

            @task
            async def broker():
                await asyncio.sleep(0.3)

            @task
            def db():
                time.sleep(0.3)

            @task
            def redis():
                time.sleep(0.3)
            """
        )
        suite.tests("def test_all(api, broker, db, redis): pass\n")
        suite.run("--flowrun-report=report.json").assert_outcomes(passed=1)
        report = suite.report()
        # Four 0.3 s tasks side by side: the span is near a quarter of the serial sum.
        assert report["setup_span_s"] < 0.6 * report["serial_s"]

    def test_a_test_waits_only_for_the_tasks_it_needs(self, suite: Suite) -> None:
        suite.conftest(
            """
            import asyncio
            from flowrun import task

            @task
            async def quick():
                return "quick"

            @task
            async def slow():
                log("slow started")
                await asyncio.sleep(1.2)
                log("slow done")
                return "slow"
            """
        )
        suite.tests(
            """
            from conftest import log

            def test_quick(quick):
                log("test_quick ran")

            def test_slow(slow):
                log("test_slow ran")
            """
        )
        suite.run().assert_outcomes(passed=2)
        times = suite.times()
        # The whole needed subgraph started with the first test; that test did not
        # wait for the slow task it does not need.
        assert times["slow started"] < times["test_quick ran"] < times["slow done"]
        assert times["slow done"] < times["test_slow ran"]

    @pytest.mark.parametrize(
        ("args", "ini_lines", "expected"),
        [
            (["--flowrun-max-parallel=2"], [], 2),
            ([], ["flowrun_max_parallel = 3"], 3),
            (["--flowrun-max-parallel", "1"], ["flowrun_max_parallel = 3"], 1),
        ],
        ids=["option", "ini", "option-over-ini"],
    )
    def test_max_parallel_bounds_the_tasks_running_at_once(
        self, suite: Suite, args: list[str], ini_lines: list[str], expected: int
    ) -> None:
        suite.ini(*ini_lines)
        suite.conftest(
            """
            import asyncio, threading, time
            from flowrun import task

            lock = threading.Lock()
            state = {"running": 0, "peak": 0}

            def enter():
                with lock:
                    state["running"] += 1
                    state["peak"] = max(state["peak"], state["running"])

            def leave():
                with lock:
                    state["running"] -= 1

            def make(i):
                if i % 2:
                    @task(name=f"t{i}")
                    async def body():
                        enter()
                        await asyncio.sleep(0.2)
                        leave()
                else:
                    @task(name=f"t{i}")
                    def body():
                        enter()
                        time.sleep(0.2)
                        leave()
                return body

            for i in range(6):  # tasks are found by their module-level names
                globals()[f"t{i}"] = make(i)

            @task(deps=[f"t{i}" for i in range(6)])
            def peak():
                return state["peak"]
            """
        )
        suite.tests(f"def test_peak(peak):\n    assert peak == {expected}\n")
        suite.run(*args).assert_outcomes(passed=1)

    def test_observed_durations_put_the_longest_path_first_next_time(self, suite: Suite) -> None:
        suite.conftest(
            """
            import time
            from flowrun import task

            @task
            def lone():
                log("lone")
                time.sleep(0.3)

            @task
            def head():
                log("head")

            @task(deps=[head])
            def tail():
                log("tail")
            """
        )
        suite.tests("def test_all(lone, tail): pass\n")
        # Unknown durations count one unit per task: the two-task chain goes first.
        suite.run("--flowrun-max-parallel=1").assert_outcomes(passed=1)
        assert suite.log()[0] == "head"
        durations = suite.pytester.runpytest("--cache-show=flowrun/*")
        durations.stdout.fnmatch_lines(["flowrun/durations contains:", "*'lone': 0.3*"])
        # The second run knows 'lone' is the long one.
        (suite.path / "log.txt").unlink()
        suite.run("--flowrun-max-parallel=1").assert_outcomes(passed=1)
        assert suite.log()[0] == "lone"


class TestTimeouts:
    def test_timeout_s_bounds_a_task(self, suite: Suite) -> None:
        suite.conftest(
            """
            import asyncio
            from flowrun import task

            @task(timeout_s=0.2)
            async def hangs():
                await asyncio.sleep(30)
            """
        )
        suite.tests("def test_hangs(hangs): pass\n")
        result = suite.run()
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            ["*flowrun: task 'hangs' timed out: attempt timed out after 0.2s"]
        )

    @pytest.mark.parametrize(
        ("args", "ini_lines"),
        [(["--flowrun-timeout=0.2"], []), ([], ["flowrun_timeout = 0.2"])],
        ids=["option", "ini"],
    )
    def test_the_default_timeout_applies_to_tasks_without_one(
        self, suite: Suite, args: list[str], ini_lines: list[str]
    ) -> None:
        suite.ini(*ini_lines)
        suite.conftest(
            """
            import time
            from flowrun import task

            @task
            def blocks():
                time.sleep(30)

            @task(timeout_s=5)
            def has_its_own():
                time.sleep(0.3)
            """
        )
        suite.tests("def test_blocks(blocks): pass\n\ndef test_own(has_its_own): pass\n")
        result = suite.run(*args)
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(["*task 'blocks' timed out: attempt timed out after 0.2s"])


class TestDynamicRequests:
    TASKS = """
        from flowrun import task

        @task
        def db():
            log("db")
            return "db"

        @task
        def cache():
            log("cache")
            return "cache"
    """

    def test_a_task_requested_dynamically_before_the_run_starts_joins_it(
        self, suite: Suite
    ) -> None:
        suite.conftest(self.TASKS)
        suite.tests(
            """
            def test_dynamic(request):
                assert request.getfixturevalue("db") == "db"
            """
        )
        suite.run().assert_outcomes(passed=1)
        assert suite.log() == ["db"]

    def test_a_task_requested_dynamically_after_the_run_started_errors_saying_why(
        self, suite: Suite
    ) -> None:
        suite.conftest(self.TASKS)
        suite.tests(
            """
            def test_static(db):
                pass

            def test_dynamic(request):
                request.getfixturevalue("cache")
            """
        )
        result = suite.run()
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            ["*flowrun: task 'cache' was requested dynamically * after the setup run had started*"]
        )


def test_tasks_start_processes_while_tests_change_the_environment(suite: Suite) -> None:
    # Python 3.11 and 3.12 release the GIL while a vforked child execs, and the child
    # reads the environment then: a test changing it (as pytest does at every phase with
    # PYTEST_CURRENT_TEST) made Popen fail with "Bad address" (_signals.Spawning).
    suite.conftest(
        """
        import subprocess, sys
        from flowrun import task

        @task
        def first():
            pass

        @task
        def spawner():
            for _ in range(150):
                subprocess.run([sys.executable, "-c", "pass"], check=True)
            log("spawned")
        """
    )
    suite.tests(
        """
        import os, time
        from conftest import log

        def test_first(first):
            pass

        def test_churn():
            deadline = time.monotonic() + 60
            i = 0
            while time.monotonic() < deadline and not os.path.exists("log.txt"):
                os.environ[f"FLOWRUN_CHURN_{i % 40}"] = "x" * (i % 90)
                os.environ.pop(f"FLOWRUN_CHURN_{(i * 7) % 40}", None)
                i += 1
            for key in [k for k in os.environ if k.startswith("FLOWRUN_CHURN_")]:
                del os.environ[key]
            assert i > 1000, "the churn did not overlap the spawning"

        def test_spawner(spawner):
            pass
        """
    )
    result = suite.run_subprocess(timeout=120)
    result.assert_outcomes(passed=3)
