"""pytest's outcomes raised inside a task: skip, xfail, fail, exit, KeyboardInterrupt,
sys.exit, in bodies and teardowns, sync and async; none hangs, each ends as in a fixture."""

from __future__ import annotations

import pytest

from ._suite import Suite

#: The same step written as each kind of task: ``RAISE`` is where it raises.
KINDS = {
    "sync": "def {name}():\n    RAISE\n",
    "async": "async def {name}():\n    RAISE\n",
    "generator": "def {name}():\n    RAISE\n    yield\n",
    "async generator": "async def {name}():\n    RAISE\n    yield\n",
}


def step(name: str, kind: str, statement: str, *, decorator: str = "@task") -> str:
    """Source of task ``name`` of ``kind`` whose body runs ``statement``."""
    return decorator + "\n" + KINDS[kind].format(name=name).replace("RAISE", statement)


def conftest(suite: Suite, *parts: str) -> None:
    suite.conftest(
        "import sys\nimport pytest\nfrom flowrun import task\n\n" + "\n\n".join(parts),
    )


@pytest.mark.parametrize("kind", list(KINDS))
class TestSkip:
    def test_a_skipped_task_skips_the_tests_needing_it_directly_or_through_descendants(
        self, suite: Suite, kind: str
    ) -> None:
        conftest(
            suite,
            step("docker", kind, 'pytest.skip("docker is not available")'),
            """
@task(deps=[docker])
def postgres():
    log("postgres ran")

@pytest.fixture(scope="session")
def database(postgres):
    return "db"

@task
def unrelated():
    return 1
""",
        )
        suite.tests(
            """
            def test_docker(docker): pass
            def test_postgres(postgres): pass
            def test_database(database): pass
            def test_unrelated(unrelated): pass
            """
        )
        result = suite.run("-rs", "--flowrun-report=report.json")
        result.assert_outcomes(passed=1, skipped=3)
        assert result.ret == pytest.ExitCode.OK
        reason = "flowrun: task 'docker' skipped: docker is not available"
        result.stdout.fnmatch_lines(
            [
                f"SKIPPED [[]1[]] test_suite.py:*: {reason}",
                f"SKIPPED [[]1[]] test_suite.py:*: {reason}",
                f"SKIPPED [[]1[]] test_suite.py:*: {reason}",
            ]
        )
        result.stdout.fnmatch_lines(["flowrun: * 0 failed, 2 skipped; *"])
        assert "postgres ran" not in suite.log()
        tasks = suite.report()["tasks"]
        assert tasks["docker"]["status"] == "SKIPPED"
        assert tasks["docker"]["error"]["message"] == "docker is not available"
        assert tasks["postgres"]["status"] == "SKIPPED"
        assert tasks["postgres"]["skipped_because"] == "docker"
        assert suite.report()["status"] == "SUCCESS"

    def test_xfail_in_a_task_is_a_skip_with_its_reason(self, suite: Suite, kind: str) -> None:
        conftest(suite, step("flaky", kind, 'pytest.xfail("the sandbox is down")'))
        suite.tests("def test_flaky(flaky): pass\n\ndef test_plain(): pass\n")
        result = suite.run("-rs")
        result.assert_outcomes(passed=1, skipped=1)
        assert result.ret == pytest.ExitCode.OK
        result.stdout.fnmatch_lines(
            ["SKIPPED * flowrun: task 'flaky' skipped: the sandbox is down"]
        )

    def test_a_skip_is_never_retried(self, suite: Suite, kind: str) -> None:
        conftest(
            suite,
            step("once", kind, 'log("try")\n    pytest.skip("no")', decorator="@task(retries=3)"),
        )
        suite.tests("def test_once(once): pass\n")
        suite.run().assert_outcomes(skipped=1)
        assert suite.log() == ["try"]


@pytest.mark.parametrize("kind", list(KINDS))
class TestFailures:
    def test_pytest_fail_fails_the_task_with_its_message_and_its_dependants_error(
        self, suite: Suite, kind: str
    ) -> None:
        conftest(
            suite,
            step("db", kind, 'pytest.fail("port 5432 in use")'),
            "@task(deps=[db])\ndef migrate():\n    log('migrate ran')\n",
        )
        suite.tests("def test_db(db): pass\n\ndef test_migrate(migrate): pass\n")
        result = suite.run()
        result.assert_outcomes(errors=2)
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        message = "flowrun: task 'db' failed: Failed: port 5432 in use"
        result.stdout.fnmatch_lines(
            ["*ERROR at setup of test_db*", message, "*ERROR at setup of test_migrate*", message]
        )
        result.stdout.fnmatch_lines(["task 'db' FAILED after 1 attempt: Failed: port 5432 in use"])
        assert "migrate ran" not in suite.log()

    def test_sys_exit_fails_the_task_as_in_a_fixture(self, suite: Suite, kind: str) -> None:
        conftest(
            suite,
            step("cli", kind, "sys.exit(3)"),
            "@task(deps=[cli])\ndef after():\n    log('after ran')\n",
        )
        suite.tests("def test_after(after): pass\n\ndef test_plain(): pass\n")
        result = suite.run()
        result.assert_outcomes(passed=1, errors=1)
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(["*flowrun: task 'cli' failed: SystemExit: 3"])
        assert "after ran" not in suite.log()


class TestInterrupts:
    """``pytest.exit`` and ``KeyboardInterrupt`` in a task end the session as in a fixture."""

    SUITE = """
@pytest.fixture(scope="session")
def docker():
    yield "docker"
    log("docker down")

@task
@pytest.fixture(scope="session")
def db(docker):
    yield "db"
    log("db down")

{step}

@task(deps=[stopper])
def after():
    log("after ran")
"""

    @pytest.mark.parametrize("kind", ["sync", "async"])
    @pytest.mark.parametrize(
        ("statement", "code", "line"),
        [
            (
                'pytest.exit("the cluster is gone", returncode=7)',
                7,
                "*Exit: flowrun: task 'stopper': the cluster is gone*",
            ),
            ("raise KeyboardInterrupt", 2, "*KeyboardInterrupt*"),
        ],
    )
    def test_the_session_ends_with_teardown_and_its_exit_code(
        self, suite: Suite, kind: str, statement: str, code: int, line: str
    ) -> None:
        conftest(
            suite,
            self.SUITE.format(
                step=step("stopper", kind, statement, decorator="@task(deps=[db])").replace(
                    "def stopper()", "def stopper(db)"
                )
            ),
        )
        suite.tests(
            """
            def test_db(db): pass
            def test_after(after): pass
            def test_later(): pass
            """
        )
        result = suite.run_subprocess("--flowrun-report=report.json", timeout=30)
        assert result.ret == code, result.stdout.str()
        result.stdout.fnmatch_lines([line])
        result.assert_outcomes(passed=1)
        # Torn down, tasks before the session fixtures they use; nothing started after.
        assert suite.log() == ["db down", "docker down"]
        tasks = suite.report()["tasks"]
        assert tasks["stopper"]["status"] == "FAILED"
        assert tasks["after"]["status"] == "CANCELLED"

    def test_an_interrupt_from_a_task_no_test_waits_for_stops_before_the_next_test(
        self, suite: Suite
    ) -> None:
        conftest(
            suite,
            """
import time

@task
def background():
    time.sleep(0.2)
    pytest.exit("stop", returncode=3)

@task
def quick():
    return 1
""",
        )
        # test_quick does not wait for 'background', which raises while test_waits runs.
        suite.tests(
            """
            import time

            def test_quick(quick): pass
            def test_waits(): time.sleep(1)
            def test_next(): pass
            def test_needs(background): pass
            """
        )
        result = suite.run_subprocess("-v", timeout=30)
        assert result.ret == 3, result.stdout.str()
        result.assert_outcomes(passed=2)  # test_next is stopped at its setup
        assert "test_next PASSED" not in result.stdout.str()
        result.stdout.fnmatch_lines(["*Exit: flowrun: task 'background': stop*"])

    def test_an_interrupt_during_the_last_test_still_ends_the_session(self, suite: Suite) -> None:
        conftest(
            suite,
            """
import asyncio

@task
async def background():
    await asyncio.sleep(0.2)
    raise KeyboardInterrupt

@task
def quick():
    yield 1
    log("quick down")
""",
        )
        suite.tests(
            """
            import time
            import pytest

            @pytest.mark.skip(reason="selects 'background' only")
            def test_background(background): pass

            def test_last(quick): time.sleep(1)
            """
        )
        result = suite.run_subprocess(timeout=30)
        assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()
        result.stdout.fnmatch_lines(["*KeyboardInterrupt: flowrun: task 'background' raised*"])
        assert suite.log() == ["quick down"]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_pytest_fail_in_a_teardown_is_a_reported_teardown_error(suite: Suite, kind: str) -> None:
    prefix = "async " if kind == "async" else ""
    conftest(
        suite,
        f"""
@task
{prefix}def db():
    yield "db"
    pytest.fail("could not stop the database")

@task
def other():
    yield "other"
    log("other down")
""",
    )
    suite.tests("def test_db(db, other): pass\n")
    result = suite.run_subprocess(timeout=30)
    result.assert_outcomes(passed=1, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_db*",
            "flowrun: teardown failed: task 'db': Failed: could not stop the database",
            "*= flowrun =*",
            "task 'db' teardown FAILED: Failed: could not stop the database",
            "*= 1 passed, 1 error in *",
        ]
    )
    assert "SystemError" not in result.stdout.str() + result.stderr.str()
    assert suite.log() == ["other down"]
