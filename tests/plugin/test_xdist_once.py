"""``--flowrun-xdist once``: the xdist controller runs the setup once for every worker,
hands each worker the results its tests need, and tears it down after the last one."""

from __future__ import annotations

import signal

import pytest

from ._servers import SERVERS_HELPER, alive, pids, popen_pytest
from ._suite import Suite
from .test_interrupts import signal_after

pytest.importorskip("xdist")

#: A server (a child process) and a plain step on it; every test logs its start and end
#: with its worker, so the log shows the teardown came after the last test.
SERVER_AND_STEP = (
    SERVERS_HELPER
    + """
import os, time
import pytest
from flowrun import task

ROLE = "controller"

def pytest_configure(config):
    global ROLE
    if hasattr(config, "workerinput"):
        ROLE = config.workerinput["workerid"]

def where():
    return ROLE

@task
@pytest.fixture(scope="session")
def server(tmp_path_factory):
    proc = start("server")
    log(f"server up on {where()}")
    yield {"url": "http://127.0.0.1:1", "base": str(tmp_path_factory.getbasetemp())}
    stop(proc)
    log("server down")

@task(deps=[server])
def seed(server):
    time.sleep(0.2)
    log(f"seed on {where()}")
    return server["url"] + "/seeded"

@pytest.fixture
def logged():
    log(f"test start on {where()}")
    yield
    time.sleep(0.05)
    log(f"test end on {where()}")
"""
)

TESTS = """
import pytest

@pytest.mark.parametrize("i", range(9))
def test_seed(logged, seed, i):
    assert seed == "http://127.0.0.1:1/seeded"

@pytest.mark.xdist_group("servers")
def test_server(logged, server):
    assert server["url"].startswith("http://")

def test_unit():
    pass
"""


def once(*args: str) -> tuple[str, ...]:
    return ("-p", "no:randomly", "--flowrun-xdist=once", *args)


@pytest.mark.parametrize("dist", ["load", "loadscope", "loadfile", "loadgroup", "worksteal"])
def test_each_task_runs_once_on_the_controller_and_is_torn_down_after_the_last_test(
    suite: Suite, leftovers: object, dist: str
) -> None:
    suite.conftest(SERVER_AND_STEP)
    suite.tests(TESTS)
    result = suite.run_subprocess(
        *once("-n", "3", f"--dist={dist}", "--flowrun-report=report.json")
    )
    result.assert_outcomes(passed=11)
    assert result.ret == pytest.ExitCode.OK
    log = suite.log()
    assert log.count("server up on controller") == 1, log
    assert log.count("seed on controller") == 1, log
    assert log[-1] == "server down", log
    assert (
        log.count("test end on gw0") + log.count("test end on gw1") + log.count("test end on gw2")
        == 10
    )
    assert alive(suite.path) == []
    # One summary and one report, the controller's.
    result.stdout.fnmatch_lines(["*= flowrun =*", "flowrun: 2 tasks run, 0 failed, *"])
    assert "flowrun [gw" not in result.stdout.str()
    assert suite.report()["tasks"]["server"]["teardown"]["status"] == "SUCCESS"
    assert not list(suite.path.glob("report.gw*.json"))


def test_tests_that_need_no_task_start_nothing(suite: Suite, leftovers: object) -> None:
    suite.conftest(SERVER_AND_STEP)
    suite.tests(TESTS)
    result = suite.run_subprocess(*once("-n", "3", "-k", "unit"))
    result.assert_outcomes(passed=1)
    assert suite.log() == []
    assert pids(suite.path) == {}


def test_a_failed_task_errors_its_tests_on_every_worker_with_one_traceback(
    suite: Suite, leftovers: object
) -> None:
    suite.conftest(
        """
        from flowrun import task

        @task
        def broken():
            raise RuntimeError("the database did not come up")

        @task(deps=[broken])
        def child(broken):
            return 1
        """
    )
    suite.tests(
        """
        import pytest

        @pytest.mark.parametrize("i", range(6))
        def test_child(child, i):
            pass

        def test_unit():
            pass
        """
    )
    result = suite.run_subprocess(*once("-n", "3"))
    result.assert_outcomes(passed=1, errors=6)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    line = "did not run because task 'broken' failed: RuntimeError: the database did not come up"
    assert output.count(f"\nflowrun: task 'child' {line}") == 6, output
    # The traceback once, in the controller's summary.
    assert output.count('raise RuntimeError("the database did not come up")') == 1, output


def test_a_skipped_task_skips_its_tests_on_every_worker(suite: Suite) -> None:
    suite.conftest(
        """
        import pytest
        from flowrun import task

        @task
        def docker():
            pytest.skip("docker is not available")
        """
    )
    suite.tests("def test_a(docker): pass\ndef test_b(docker): pass\ndef test_c(): pass\n")
    result = suite.run_subprocess(*once("-n", "2", "-rs"))
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*flowrun: task 'docker' skipped: docker is not available*"])


def test_a_result_that_is_not_plain_data_is_refused_for_the_tests_that_receive_it(
    suite: Suite,
) -> None:
    # 'client' is an object: a test asking for it gets a clear error; 'url', derived
    # from it on the controller, reaches its tests; so does a JSON-able 'config'.
    suite.conftest(
        """
        from flowrun import task

        class Client:
            base = "http://127.0.0.1:8000"

        @task
        def client():
            return Client()

        @task(deps=[client])
        def url(client):
            return client.base + "/api"

        @task
        def pair():
            return (1, 2)
        """
    )
    suite.tests(
        """
        def test_url(url):
            assert url == "http://127.0.0.1:8000/api"

        def test_client(client):
            pass

        def test_pair(pair):
            pass
        """
    )
    result = suite.run_subprocess(*once("-n", "2"))
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*flowrun: task 'client' returned a Client, which cannot reach the tests on "
            "xdist workers unchanged*use --flowrun-xdist per-worker*",
        ]
    )
    result.stdout.fnmatch_lines(["*flowrun: task 'pair' returned a tuple*"])


def test_the_fixtures_a_task_takes_are_set_up_on_the_controller_only(suite: Suite) -> None:
    suite.conftest(
        """
        import pytest
        from flowrun import task

        ROLE = "controller"

        def pytest_configure(config):
            global ROLE
            if hasattr(config, "workerinput"):
                ROLE = config.workerinput["workerid"]

        @pytest.fixture(scope="session")
        def docker():
            log(f"docker up on {ROLE}")
            yield "docker"
            log("docker down")

        @task
        @pytest.fixture(scope="session")
        def db(docker):
            log("db up")
            yield f"db on {docker}"
            log("db down")
        """
    )
    suite.tests("def test_a(db): assert db == 'db on docker'\ndef test_b(db): pass\n")
    result = suite.run_subprocess(*once("-n", "2"))
    result.assert_outcomes(passed=2)
    # Set up on the controller alone, and torn down after the task that uses it.
    assert suite.log() == ["docker up on controller", "db up", "db down", "docker down"]


def test_a_crashed_worker_is_replaced_and_gets_the_results_already_there(
    suite: Suite, leftovers: object
) -> None:
    suite.conftest(SERVER_AND_STEP)
    suite.tests(
        """
        import os

        def test_crash(seed):
            os._exit(1)

        def test_a(seed): pass
        def test_b(seed): pass
        def test_c(seed): pass
        """
    )
    result = suite.run_subprocess(*once("-n", "2", "--max-worker-restart=2"))
    result.assert_outcomes(passed=3, failed=1)
    log = suite.log()
    assert log.count("server up on controller") == 1, log
    assert log.count("seed on controller") == 1, log
    assert log[-1] == "server down"
    assert alive(suite.path) == []


def test_a_bad_dag_is_refused_once_before_any_worker_starts(suite: Suite) -> None:
    suite.conftest(
        """
        from flowrun import task

        @task(deps=["missing"])
        def db():
            log("db ran")
        """
    )
    suite.tests("def test_a(db): pass\n")
    result = suite.run_subprocess(*once("-n", "3"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert output.count("ERROR: flowrun:") == 1, output
    assert "'missing'" in output
    assert "bringing up nodes" not in output
    assert suite.log() == []


def test_a_task_the_controller_does_not_load_is_a_usage_error(suite: Suite) -> None:
    suite.conftest("")
    suite.conftest(
        """
        from flowrun import task

        @task
        def nested():
            log("nested ran")
        """,
        where="sub",
    )
    suite.tests("def test_a(nested): pass\ndef test_b(): pass\n", name="sub/test_a.py")
    result = suite.run_subprocess(*once("-n", "2"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert output.count("ERROR: flowrun: --flowrun-xdist once: task(s) 'nested'") == 1, output
    assert "sub/conftest.py" in output
    assert "INTERNALERROR" not in output
    assert suite.log() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tx", "ssh=nowhere//python=python3", "--dist=load"], "--tx 'ssh=nowhere"),
        (["-n", "1", "--flowrun-fixture", "docker"], "promoted fixtures"),
        (["-n", "1", "--flowrun-loop", "asyncio-session"], "--flowrun-loop asyncio-session"),
    ],
    ids=["remote-worker", "promoted-fixture", "session-loop"],
)
def test_what_once_mode_cannot_serve_is_refused(
    suite: Suite, args: list[str], message: str
) -> None:
    suite.conftest(
        """
        import pytest
        from flowrun import task

        @pytest.fixture(scope="session")
        def docker():
            return "docker"

        @task
        def db():
            log("db ran")
        """
    )
    suite.tests("def test_a(db): pass\n")
    result = suite.run_subprocess(*once(*args))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stderr.str()
    assert "ERROR: flowrun: --flowrun-xdist once cannot run here" in output, output
    assert message in output
    assert suite.log() == []


@pytest.mark.parametrize("args", [["-n", "0"], ["-p", "no:xdist"]], ids=["n0", "no-xdist"])
def test_without_workers_the_option_changes_nothing(suite: Suite, args: list[str]) -> None:
    suite.conftest(SERVER_AND_STEP)
    suite.tests(TESTS)
    result = suite.run_subprocess(*once(*args))
    result.assert_outcomes(passed=11)
    assert suite.log().count("server up on controller") == 1


def test_an_invalid_mode_is_refused(suite: Suite) -> None:
    suite.tests("def test_a(): pass\n")
    result = suite.run_subprocess("--flowrun-xdist=twice")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--flowrun-xdist='twice' is invalid: expected one of per-worker, once*"]
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "group"),
    [
        (signal.SIGINT, False),
        (signal.SIGTERM, False),
        (signal.SIGINT, True),
        (signal.SIGTERM, True),
    ],
    ids=["SIGINT", "SIGTERM", "SIGINT-group", "SIGTERM-group"],
)
def test_a_signal_to_the_controller_tears_the_setup_down(
    suite: Suite, leftovers: object, signum: int, group: bool
) -> None:
    suite.conftest(
        SERVERS_HELPER
        + """
import signal, time
from flowrun import task

signal.signal(signal.SIGINT, signal.default_int_handler)

@task
def db():
    proc = start("db")
    log("db up")
    yield "db"
    stop(proc)
    log("db down")

@task(deps=[db])
def slow(db):
    log("slow started")
    time.sleep(30)
"""
    )
    suite.tests("def test_a(slow): pass\ndef test_b(slow): pass\ndef test_c(db): pass\n")
    process = popen_pytest(suite.path, *once("-n", "2"), new_session=True)
    output, _, took = signal_after(suite, process, [("slow started", signum)], group=group)
    assert took < 15, output
    assert process.returncode != pytest.ExitCode.OK, output
    assert suite.log().count("db up") == 1
    assert suite.log()[-1] == "db down", output
    assert alive(suite.path) == []


def test_a_failed_teardown_fails_the_run_after_the_tests_pass(suite: Suite) -> None:
    suite.conftest(
        """
        from flowrun import task

        @task
        def db():
            yield "db"
            raise RuntimeError("could not drop the database")
        """
    )
    suite.tests("def test_a(db): pass\ndef test_b(db): pass\n")
    result = suite.run_subprocess(*once("-n", "2"))
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*could not drop the database*"])


def test_the_dag_is_printed_once(suite: Suite) -> None:
    suite.conftest(
        """
        from flowrun import task

        @task
        def db():
            return "db"

        @task(deps=[db])
        def api(db):
            return "api"
        """
    )
    suite.tests("def test_a(api): pass\ndef test_b(db): pass\n")
    result = suite.run_subprocess(*once("-n", "2", "--flowrun-dag"))
    result.assert_outcomes(passed=2)
    output = result.stdout.str()
    assert output.count("flowrun: setup DAG") == 1, output
    assert output.count("= flowrun =") == 1, output


def test_ctrl_c_while_the_controller_sets_up_a_tasks_fixture_starts_no_task(
    suite: Suite, leftovers: object
) -> None:
    suite.conftest(
        SERVERS_HELPER
        + """
import signal, time
import pytest
from flowrun import task

signal.signal(signal.SIGINT, signal.default_int_handler)

@pytest.fixture(scope="session")
def docker():
    proc = start("docker")
    log("docker starting")
    time.sleep(1.5)
    yield "docker"
    stop(proc)
    log("docker down")

@task
@pytest.fixture(scope="session")
def db(docker):
    log("db started")
    return "db"
"""
    )
    suite.tests("def test_a(db): pass\n")
    process = popen_pytest(suite.path, *once("-n", "1"))
    output, _, _ = signal_after(suite, process, [("docker starting", signal.SIGINT)])
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert suite.log() == ["docker starting", "docker down"], output
    assert alive(suite.path) == []


def test_a_fixture_the_controller_does_not_have_fails_the_tests_naming_it(suite: Suite) -> None:
    suite.conftest(
        """
        import pytest
        from flowrun import task

        @task
        @pytest.fixture(scope="session")
        def db(docker):
            log("db ran")
        """
    )
    suite.conftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def docker():
            return "docker"
        """,
        where="sub",
    )
    suite.tests("def test_a(db): pass\ndef test_b(): pass\n", name="sub/test_a.py")
    result = suite.run_subprocess(*once("-n", "2"))
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*flowrun: the setup run could not start: UsageError: task 'db' takes fixture "
            "'docker', which the xdist controller that runs the setup*",
        ]
    )
    assert suite.log() == []


def test_a_connection_without_the_token_gets_nothing(suite: Suite) -> None:
    suite.conftest(
        """
        from flowrun import task

        @task
        def db():
            log("db ran")
            return "db"
        """
    )
    suite.tests(
        """
        import socket

        def test_wrong_token(request):
            host, port, _ = request.config.workerinput["flowrun_once"]
            with socket.create_connection((host, port), timeout=10) as sock:
                sock.sendall(b'{"token":"guess","worker":"x"}\\n{"op":"value","task":"db"}\\n')
                assert sock.recv(100) == b""  # closed, no reply
        """
    )
    result = suite.run_subprocess(*once("-n", "1"))
    result.assert_outcomes(passed=1)
    assert suite.log() == []


def test_a_task_no_collected_test_names_is_refused_when_asked_for_dynamically(
    suite: Suite,
) -> None:
    suite.conftest(
        """
        from flowrun import task

        @task
        def db():
            return "db"

        @task
        def extra():
            log("extra ran")
            return "extra"
        """
    )
    suite.tests(
        """
        def test_db(db):
            pass

        def test_dynamic(request):
            request.getfixturevalue("extra")
        """
    )
    result = suite.run_subprocess(*once("-n", "1", "-p", "no:randomly"))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*flowrun: task 'extra' was requested dynamically*"])
    assert suite.log() == []
