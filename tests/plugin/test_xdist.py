"""pytest-xdist: each worker runs the setup its tests need; the controller reports it."""

from __future__ import annotations

import os
import signal
import time

import pytest

from ._servers import SERVERS_HELPER, alive, pids, popen_pytest
from ._suite import Suite

pytest.importorskip("xdist")


def test_each_worker_runs_its_setup_and_the_controller_prints_each_summary(
    suite: Suite,
) -> None:
    suite.conftest(
        """
        import time
        from flowrun import task

        @task
        def db():
            time.sleep(0.3)  # long after 'broken' has failed
            return "db"

        @task
        def broken():
            raise RuntimeError("broken")
        """
    )
    suite.tests(
        """
        import pytest

        def test_db(db):
            pass

        @pytest.mark.skip(reason="later")
        def test_broken(broken):
            pass
        """
    )
    result = suite.run_subprocess("-n", "2", "--flowrun-report=report.json")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*= flowrun [[]gw?[]] =*", "flowrun: * tasks run, *"])
    # A task failed on a worker: the session fails, as without xdist.
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert {p.name for p in suite.path.glob("report.gw*.json")} <= {
        "report.gw0.json",
        "report.gw1.json",
    }
    assert list(suite.path.glob("report.gw*.json"))


def test_a_skipped_task_skips_the_tests_needing_it_on_every_worker(suite: Suite) -> None:
    suite.conftest(
        """
        import pytest
        from flowrun import task

        @task
        async def docker():
            pytest.skip("docker is not available")

        @task(deps=[docker])
        def db(docker):
            log("db ran")
        """
    )
    suite.tests("def test_a(db): pass\ndef test_b(db): pass\ndef test_c(): pass\n")
    result = suite.run_subprocess("-n", "2", "-rs", "--flowrun-timeout=5")
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["SKIPPED * flowrun: task 'docker' skipped: docker is not available"]
    )
    assert "db ran" not in suite.log()


@pytest.mark.slow
@pytest.mark.parametrize("timeout", [[], ["--flowrun-timeout=30"]], ids=["", "timeout"])
def test_sigterm_to_the_process_group_tears_down_every_worker(
    suite: Suite, leftovers: object, timeout: list[str]
) -> None:
    # CI cancelling a job signals the whole group: each worker runs a task, so each one
    # handles SIGTERM like Ctrl-C and tears its setup down (the controller runs none).
    suite.conftest(
        SERVERS_HELPER
        + """
import os, time
from flowrun import task

@task
def db():
    proc = start(f"db-{os.getpid()}")
    log("db up")
    yield "db"
    stop(proc)
    log("db down")

@task(deps=[db])
def slow(db):
    time.sleep(30)
"""
    )
    suite.tests("def test_a(slow): pass\ndef test_b(slow): pass\ndef test_c(db): pass\n")
    process = popen_pytest(suite.path, "-n", "2", *timeout, new_session=True)
    try:
        deadline = time.monotonic() + 30
        while suite.log().count("db up") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert suite.log().count("db up") == 2
        sent = time.monotonic()
        os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
        assert time.monotonic() - sent < 15, output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # The controller (no handler: SIGTERM's default) may exit while the workers, which
    # got the same signal, are still tearing down: wait for them, within the same bound.
    while suite.log().count("db down") < 2 and time.monotonic() - sent < 15:
        time.sleep(0.05)
    assert suite.log().count("db down") == 2, output
    assert len(pids(suite.path)) == 2
    assert alive(suite.path) == []


@pytest.mark.parametrize("where", ["", "sub"], ids=["root-conftest", "nested-conftest"])
def test_a_usage_error_on_the_workers_is_printed_once_with_its_exit_code(
    suite: Suite, where: str
) -> None:
    # Each worker validates the DAG after its collection; the controller, which does not
    # collect, prints what the workers refused once, as without xdist.
    suite.conftest(
        """
        from flowrun import task

        @task(deps=["missing"])
        def db(missing):
            return "db"
        """,
        where=where,
    )
    suite.tests("def test_a(db): pass\ndef test_b(): pass\n", name=f"{where or '.'}/test_a.py")
    result = suite.run_subprocess("-n", "2")
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output, output
    message = "flowrun: task 'db' depends on 'missing', which is not registered"
    assert output.count(message) == 1, output
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_a_cycle_found_on_the_workers_is_printed_once(suite: Suite) -> None:
    suite.conftest(
        """
        from flowrun import task

        @task(deps=["b"])
        def a(b):
            return "a"

        @task(deps=["a"])
        def b(a):
            return "b"
        """,
        where="sub",
    )
    suite.tests("def test_a(a): pass\n", name="sub/test_a.py")
    result = suite.run_subprocess("-n", "2")
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output, output
    message = "flowrun: tasks depend on each other in a cycle: a -> b -> a"
    assert output.count(message) == 1, output
    assert "Interrupted" not in output, output
    result.stderr.fnmatch_lines([f"ERROR: {message} *"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_the_dag_is_printed_once_by_the_controller(suite: Suite) -> None:
    suite.conftest(
        """
        from flowrun import task

        @task
        def db():
            return "db"

        @task(deps=[db])
        def api(db):
            return "api"

        @task
        def unused():
            return "unused"
        """
    )
    suite.tests("def test_a(api): pass\ndef test_b(db): pass\n")
    result = suite.run_subprocess("-n", "2", "--flowrun-dag")
    result.assert_outcomes(passed=2)
    output = result.stdout.str()
    assert output.count("flowrun: setup DAG") == 1, output
    assert output.count("excluded by selection: unused") == 1, output
    result.stdout.fnmatch_lines(
        ["*flowrun: setup DAG*", "*db*", "*api*", "*= flowrun [[]gw?[]] =*"]
    )
