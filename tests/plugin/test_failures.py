"""Failures: propagation to exactly the tests that need a failed task, teardown, Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from ._suite import Suite


class TestFailedTasks:
    def test_exactly_the_tests_needing_a_failed_task_error(self, suite: Suite) -> None:
        suite.conftest(
            """
            import pytest
            from flowrun import task

            @task
            def db():
                raise RuntimeError("db did not start")

            @task(deps=[db])
            def migrate(db):
                log("migrate ran")

            @task
            def api():
                return "api"

            @pytest.fixture(scope="session")
            def repository(migrate):
                return "repository"
            """
        )
        suite.tests(
            """
            def test_db(db): pass
            def test_migrate(migrate): pass
            def test_repository(repository): pass
            def test_api(api): pass
            def test_plain(): pass
            """
        )
        result = suite.run()
        result.assert_outcomes(passed=2, errors=3)
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(
            [
                "ERROR test_suite.py::test_db - Failed: flowrun: task 'db' failed: RuntimeErr*",
                "ERROR test_suite.py::test_migrate - Failed: flowrun: task 'db' failed: *",
                "ERROR test_suite.py::test_repository - Failed: flowrun: task 'db' failed*",
            ]
        )
        assert "migrate ran" not in suite.log()

    def test_the_traceback_appears_once_in_the_summary(self, suite: Suite) -> None:
        suite.conftest(
            """
            from flowrun import task

            @task
            def db():
                raise RuntimeError("db did not start")

            @task(deps=[db])
            def migrate():
                pass
            """
        )
        suite.tests("def test_a(db): pass\ndef test_b(db): pass\ndef test_c(migrate): pass\n")
        result = suite.run()
        result.assert_outcomes(errors=3)
        assert result.stdout.str().count('raise RuntimeError("db did not start")') == 1
        result.stdout.fnmatch_lines(
            [
                "*= flowrun =*",
                "flowrun: 1 task run, 1 failed, 1 skipped; *",
                "task 'db' FAILED after 1 attempt: RuntimeError: db did not start",
                "    Traceback (most recent call last):",
            ]
        )

    def test_a_skipped_descendant_names_the_failed_ancestor(self, suite: Suite) -> None:
        suite.conftest(
            """
            import pytest
            from flowrun import task

            @task
            def db():
                raise RuntimeError("no db")

            @task
            @pytest.fixture(scope="session")
            def migrate(db):
                pass
            """,
        )
        # A fixture outside the task's directory sees only 'migrate', not 'db'.
        suite.tests("def test_migrate(migrate): pass\n")
        result = suite.run("--flowrun-report=report.json")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*flowrun: task 'db' failed: RuntimeError: no db"])
        report = suite.report()
        assert report["tasks"]["migrate"]["status"] == "SKIPPED"
        assert report["tasks"]["migrate"]["skipped_because"] == "db"


class TestTeardown:
    CHAIN = """
        from flowrun import task

        @task
        def a():
            yield "a"
            log("a down")

        @task(deps=[a])
        async def b():
            yield "b"
            log("b down")

        @task(deps=[b])
        def c():
            yield "c"
            log("c down")

        @task
        def lone():
            yield "lone"
            log("lone down")
    """

    def test_generator_tasks_tear_down_in_reverse_dependency_order(self, suite: Suite) -> None:
        suite.conftest(self.CHAIN)
        suite.tests("def test_c(c, lone): pass\n")
        suite.run().assert_outcomes(passed=1)
        log = suite.log()
        assert sorted(log) == ["a down", "b down", "c down", "lone down"]
        assert log.index("c down") < log.index("b down") < log.index("a down")

    def test_a_failed_teardown_is_reported_the_others_still_run_and_the_exit_code_fails(
        self, suite: Suite
    ) -> None:
        stuck = 'log("b down")\n            raise ValueError("b stuck")'
        suite.conftest(self.CHAIN.replace('log("b down")', stuck))
        suite.tests("def test_c(c, lone): pass\n")
        result = suite.run("--flowrun-report=report.json")
        result.assert_outcomes(passed=1, errors=1)
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        assert sorted(suite.log()) == ["a down", "b down", "c down", "lone down"]
        result.stdout.fnmatch_lines(
            [
                "*ERROR at teardown of test_c*",
                "flowrun: teardown failed: task 'b': ValueError: b stuck",
                "task 'b' teardown FAILED: ValueError: b stuck",
            ]
        )
        teardown = suite.report()["tasks"]["b"]["teardown"]
        assert teardown["status"] == "FAILED"
        assert teardown["error"]["message"] == "b stuck"

    def test_a_hanging_teardown_is_bounded_by_the_timeout_and_reported(self, suite: Suite) -> None:
        suite.conftest(
            """
            import asyncio
            from flowrun import task

            @task
            async def hangs_on_exit():
                yield "up"
                await asyncio.sleep(30)

            @task
            def other():
                yield "other"
                log("other down")
            """
        )
        suite.tests("def test_both(hangs_on_exit, other): pass\n")
        result = suite.run("--flowrun-timeout=0.3", "--flowrun-report=report.json")
        result.assert_outcomes(passed=1, errors=1)
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        assert suite.log() == ["other down"]
        result.stdout.fnmatch_lines(
            [
                "flowrun: teardown failed: task 'hangs_on_exit': TaskTimeoutError: *",
                "task 'hangs_on_exit' teardown TIMED_OUT: TaskTimeoutError: task "
                "'hangs_on_exit': teardown timed out after 0.3s",
            ]
        )
        assert suite.report()["tasks"]["hangs_on_exit"]["teardown"]["status"] == "TIMED_OUT"

    def test_tasks_tear_down_before_the_session_fixtures_they_use_and_after_their_users(
        self, suite: Suite
    ) -> None:
        suite.conftest(
            """
            import pytest
            from flowrun import task

            @pytest.fixture(scope="session")
            def docker():
                yield "docker"
                log("docker down")

            @task
            @pytest.fixture(scope="session")
            def container(docker):
                yield "container"
                log("container down")

            @pytest.fixture(scope="session")
            def client(container):
                yield "client"
                log("client down")

            @task
            def other():
                yield "other"
                log("other down")
            """
        )
        suite.tests("def test_client(client): pass\n\ndef test_other(other): pass\n")
        suite.run().assert_outcomes(passed=2)
        log = suite.log()
        assert log.index("client down") < log.index("container down") < log.index("docker down")
        assert log.index("other down") < log.index("docker down")


INTERRUPTED_SUITE = """
    import asyncio, signal, time
    import pytest
    from flowrun import task

    # A background job may inherit SIGINT ignored; this suite is about Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    @pytest.fixture(scope="session")
    def docker():
        yield "docker"
        log("docker down")

    @task
    @pytest.fixture(scope="session")
    async def service(docker):
        yield "service"
        await asyncio.sleep(TEARDOWN_S)
        log("service down")

    @task
    def workdir():
        yield "workdir"
        log("workdir down")

    @task(deps=[service, workdir])
    def blocks():
        log("blocking")
        time.sleep(60)
"""


def _interrupt(suite: Suite, *, after: list[str]) -> tuple[int, str, float]:
    """Run the suite in a subprocess, send SIGINT once each message of ``after`` is logged;
    return the exit code, the output and the seconds from the first SIGINT to the exit."""
    process = suite.pytester.popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--flowrun-report=r.json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        first = None
        for message in after:
            deadline = time.monotonic() + 30
            while message not in suite.log() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert message in suite.log()
            first = first or time.monotonic()
            process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0].decode()
        return process.returncode, output, time.monotonic() - (first or 0.0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_ctrl_c_during_setup_cancels_tears_down_and_exits_promptly(suite: Suite) -> None:
    suite.conftest(INTERRUPTED_SUITE.replace("TEARDOWN_S", "0"))
    suite.tests("def test_blocked(blocks): pass\n\ndef test_later(): pass\n")
    code, output, took = _interrupt(suite, after=["blocking"])
    # The blocked sync task (60 s) is abandoned, not waited for.
    assert took < 15, output
    assert code == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    log = suite.log()
    assert sorted(log) == ["blocking", "docker down", "service down", "workdir down"]
    # Tasks are torn down before the session fixtures they use.
    assert log.index("service down") < log.index("docker down")
    tasks = suite.report("r.json")["tasks"]
    assert tasks["blocks"]["status"] == "CANCELLED"
    assert tasks["service"]["teardown"]["status"] == "SUCCESS"


@pytest.mark.slow
def test_a_second_ctrl_c_during_a_hanging_teardown_is_not_swallowed(suite: Suite) -> None:
    suite.conftest(
        INTERRUPTED_SUITE.replace("TEARDOWN_S", "60").replace(
            'yield "service"', 'yield "service"\n        log("service tearing down")'
        )
    )
    suite.tests("def test_blocked(blocks): pass\n")
    code, output, took = _interrupt(suite, after=["blocking", "service tearing down"])
    assert took < 15, output
    assert code != pytest.ExitCode.OK
    assert "service down" not in suite.log()


def test_a_failed_task_fails_the_session_even_when_no_test_that_ran_needed_it(
    suite: Suite,
) -> None:
    suite.conftest(
        """
        import time
        from flowrun import task

        @task
        def quick():
            time.sleep(0.3)  # long after 'broken' has failed

        @task
        def broken():
            raise RuntimeError("broken")
        """
    )
    suite.tests(
        """
        import pytest

        def test_quick(quick):
            pass

        @pytest.mark.skip(reason="later")
        def test_broken(broken):
            pass
        """
    )
    result = suite.run()
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["task 'broken' FAILED after 1 attempt: RuntimeError: broken"])


def test_a_failing_fixture_that_a_task_uses_stops_the_run_before_any_task(suite: Suite) -> None:
    suite.conftest(
        """
        import pytest
        from flowrun import task

        @pytest.fixture(scope="session")
        def credentials():
            raise PermissionError("no credentials")

        @task
        @pytest.fixture(scope="session")
        def db(credentials):
            log("db ran")

        @task
        def redis():
            log("redis ran")
        """
    )
    suite.tests("def test_redis(redis): pass\n\ndef test_db(db): pass\n")
    result = suite.run()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_redis*",
            "*PermissionError: no credentials",
            "*ERROR at setup of test_db*",
            "*PermissionError: no credentials",
        ]
    )
    assert suite.log() == []


@pytest.mark.slow
def test_faults_together_give_the_right_outcomes_teardowns_and_a_prompt_exit(
    suite: Suite,
) -> None:
    suite.conftest(
        """
        import time
        from flowrun import task

        @task
        def resource():
            yield "resource"
            log("resource down")

        @task(deps=[resource])
        def raises(resource):
            raise OSError("disk full")

        @task(deps=[resource], timeout_s=0.3)
        def hangs(resource):
            time.sleep(60)  # abandoned after its timeout; must not hold the exit

        @task(deps=[resource])
        def fine(resource):
            return "fine"
        """
    )
    suite.tests(
        """
        def test_raises(raises): pass
        def test_hangs(hangs): pass
        def test_fine(fine): pass
        def test_plain(): pass
        """
    )
    started = time.monotonic()
    result = suite.run_subprocess("--flowrun-report=report.json", timeout=60)
    took = time.monotonic() - started
    result.assert_outcomes(passed=2, errors=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert took < 30  # far below the 60 s the abandoned thread sleeps
    assert suite.log() == ["resource down"]
    statuses = {name: task["status"] for name, task in suite.report()["tasks"].items()}
    assert statuses == {
        "resource": "SUCCESS",
        "raises": "FAILED",
        "hangs": "TIMED_OUT",
        "fine": "SUCCESS",
    }
