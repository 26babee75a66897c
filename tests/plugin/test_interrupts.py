"""Ctrl-C, SIGTERM and -x while setup runs: nothing new starts, what started is torn down
in order, and no server is left running when pytest exits.

Each suite starts child processes standing in for servers (``_servers``); the tests send
signals to a pytest subprocess once a task logs a marker, then check the exit code, the
summary, a generous bound on the exit time, and that every server is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from ._servers import SERVERS_HELPER, alive, popen_pytest
from ._suite import Suite

#: A database, and an API still starting (a sync generator, in its thread) when the
#: signal comes; ``chain`` keeps starting short tasks, so a task starting after the
#: signal would show in the log.
SERVERS = (
    SERVERS_HELPER
    + """
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
DB_KIND db(docker):
    proc = start("db")
    yield "db"
    stop(proc)
    log("db down")

@task(deps=[db])
def api(db):
    proc = start("api")
    log("api starting")
    time.sleep(STARTING_S)  # still starting when the signal comes
    log("api up")
    yield "api"
    stop(proc)
    log("api down")

@task
def step0():
    time.sleep(0.05)
"""
    + "".join(
        f"\n@task(deps=[step{i}])\ndef step{i + 1}():\n    log('step{i + 1} started')\n"
        "    time.sleep(0.05)\n"
        for i in range(60)
    )
)

TESTS = """
def test_api(api): pass
def test_chain(step60): pass
"""


def servers_suite(suite: Suite, *, db_kind: str = "def", starting_s: float = 0.6) -> None:
    source = SERVERS.replace("STARTING_S", str(starting_s))
    suite.conftest(source.replace("DB_KIND", db_kind))
    suite.tests(TESTS)


def signal_after(
    suite: Suite,
    process: subprocess.Popen[bytes],
    signals: list[tuple[str, int]],
    *,
    group: bool = False,
) -> tuple[str, float, float]:
    """Send each signal once its message is logged (with ``group``, to the process group
    of a ``popen_pytest(..., new_session=True)``); return the output, the time of the
    first signal (monotonic, as the log's) and the seconds from it to pytest's exit."""
    first = 0.0
    try:
        for message, signum in signals:
            deadline = time.monotonic() + 30
            while message not in suite.log() and time.monotonic() < deadline:
                if process.poll() is not None:
                    break
                time.sleep(0.02)
            assert message in suite.log(), process.communicate(timeout=30)[0].decode()
            first = first or time.monotonic()
            if group:
                os.killpg(process.pid, signum)
            else:
                process.send_signal(signum)
        output = process.communicate(timeout=30)[0].decode()
        return output, first, time.monotonic() - first
    finally:
        if process.poll() is None:
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
            process.wait()


def started_after(suite: Suite, moment: float, slack_s: float = 0.2) -> list[str]:
    """Tasks of the chain that logged their start after ``moment`` (and ``slack_s``).

    The slack covers the signal's way to the main thread on a loaded machine; without
    the halt, the chain goes on starting a step every 0.05 s for as long as teardown
    takes, so a leak shows far beyond it.
    """
    return [m for m, t in suite.times().items() if "started" in m and t > moment + slack_s]


@pytest.mark.parametrize("when", ["api up", "api starting"], ids=["up", "starting"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("db_kind", ["def", "async def"], ids=["sync", "async"])
def test_a_signal_during_setup_stops_starting_tears_down_in_order_and_leaks_nothing(
    suite: Suite, leftovers: object, signum: int, db_kind: str, when: str
) -> None:
    servers_suite(suite, db_kind=db_kind)
    process = popen_pytest(suite.path, "--flowrun-report=report.json")
    output, sent, took = signal_after(suite, process, [(when, signum)])
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert took < 10, output
    assert "KeyboardInterrupt" in output
    assert "= flowrun =" in output  # the summary is still printed
    # The chain's steps not started yet are told apart from those cut short.
    assert " cancelled before starting; setup " in output, output
    log = suite.log()
    # The API, still starting, is waited for and torn down before the database it uses.
    assert log.index("api up") < log.index("api down") < log.index("db down")
    assert log.index("db down") < log.index("docker down")
    assert started_after(suite, sent) == []
    assert alive(suite.path) == []
    tasks = suite.report()["tasks"]
    assert tasks["api"]["teardown"]["status"] == "SUCCESS"
    assert tasks["step60"]["status"] == "CANCELLED"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_between_instructions_without_a_line_still_ends_in_the_interrupt_report(
    suite: Suite, leftovers: object, signum: int
) -> None:
    # Python 3.11 gives the jump back of this loop no line number; a signal handled
    # there made pytest's report of the interrupt crash (TypeError, exit code 1).
    suite.conftest(
        SERVERS_HELPER
        + """
import pytest
from flowrun import task

@task
def db():
    proc = start("db")
    yield "db"
    stop(proc)
    log("db down")
"""
    )
    suite.tests(
        """
        from conftest import log

        def test_busy(db):
            log("busy")
            for x in range(10**12):
                if x < 0:
                    pass
        """
    )
    process = popen_pytest(suite.path)
    output, _, took = signal_after(suite, process, [("busy", signum)])
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "TypeError" not in output, output
    # pytest points at the loop, where the signal found the main thread.
    source = (suite.path / "test_suite.py").read_text().splitlines()
    loop = range(source.index("    for x in range(10**12):") + 1, len(source) + 1)
    assert any(f"test_suite.py:{line}: KeyboardInterrupt" in output for line in loop), output
    assert took < 10, output
    assert "db down" in suite.log()
    assert alive(suite.path) == []


@pytest.mark.slow
@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_second_signal_during_teardown_aborts_at_once(
    suite: Suite, leftovers: object, second: int
) -> None:
    servers_suite(suite)
    source = (suite.path / "conftest.py").read_text()
    hanging = 'yield "db"\n    log("db tearing down")\n    time.sleep(60)'
    (suite.path / "conftest.py").write_text(source.replace('yield "db"', hanging))
    process = popen_pytest(suite.path)
    output, _, took = signal_after(
        suite, process, [("api starting", signal.SIGTERM), ("db tearing down", second)]
    )
    assert took < 10, output
    assert process.returncode != pytest.ExitCode.OK, output
    assert "db down" not in suite.log()


def test_the_handlers_are_installed_only_while_the_run_is_active(suite: Suite) -> None:
    suite.conftest(
        """
        import signal
        from flowrun import task

        def handlers():
            return (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))

        @task
        def db():
            return handlers()
        """
    )
    suite.tests(
        """
        import signal
        from conftest import handlers

        BEFORE = []

        def test_before():
            BEFORE.append(handlers())

        def test_during(db):
            assert handlers()[0] is not signal.SIG_DFL
            assert BEFORE == [(signal.SIG_DFL, signal.default_int_handler)]
        """
    )
    before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    suite.run().assert_outcomes(passed=2)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_no_handler_is_installed_when_no_task_runs(suite: Suite) -> None:
    suite.conftest(
        """
        import signal
        from flowrun import task

        @task
        def db():
            pass
        """
    )
    suite.tests(
        """
        import signal

        def test_unit():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        """
    )
    suite.run().assert_outcomes(passed=1)


def test_a_handler_of_the_suites_own_is_left_alone(suite: Suite) -> None:
    suite.conftest(
        """
        import signal
        from flowrun import task

        def mine(signum, frame):
            pass

        signal.signal(signal.SIGTERM, mine)

        @task
        def db():
            pass
        """
    )
    suite.tests(
        """
        import signal
        from conftest import mine

        def test_db(db):
            assert signal.getsignal(signal.SIGTERM) is mine
        """
    )
    previous = signal.getsignal(signal.SIGTERM)
    try:
        suite.run().assert_outcomes(passed=1)
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("timeout", [[], ["--flowrun-timeout=5"]], ids=["", "timeout"])
@pytest.mark.parametrize("option", ["-x", "--maxfail=1"])
@pytest.mark.parametrize("when", ["up", "starting"], ids=["up", "starting"])
def test_stopping_early_tears_down_what_started_and_starts_nothing(
    suite: Suite, leftovers: object, option: str, timeout: list[str], when: str
) -> None:
    # 'slow' is up when test_fails fails (it needs it), or still starting (it does not);
    # 'after_slow' blocks in its thread when the session stops.
    suite.conftest(
        SERVERS_HELPER
        + """
import time
from flowrun import task

@task
def quick():
    return 1

@task
def slow():
    proc = start("slow")
    log("slow starting")
    time.sleep(STARTING_S)
    yield "slow"
    stop(proc)
    log("slow down")

@task(deps=[slow])
def after_slow(slow):
    log("after_slow started")
    time.sleep(30)

@task(deps=[after_slow])
def last(after_slow):
    log("last started")
""".replace("STARTING_S", "0.6" if when == "starting" else "0")
    )
    needs = "quick, slow" if when == "up" else "quick"
    suite.tests(
        f"""
        def test_fails({needs}):
            assert False
        def test_last(last): pass
        """
    )
    started = time.monotonic()
    result = suite.run_subprocess(option, "--flowrun-report=report.json", *timeout, timeout=30)
    assert time.monotonic() - started < 20  # after_slow's 30 s thread is not waited for
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    log = suite.log()
    assert log[0] == "slow starting", log
    assert log[-1] == "slow down", log
    assert "last started" not in log
    assert alive(suite.path) == []
    tasks = suite.report()["tasks"]
    assert tasks["slow"]["teardown"]["status"] == "SUCCESS"
    assert tasks["last"]["status"] == "CANCELLED"


def test_ctrl_c_as_the_run_starts_still_tears_down_what_started(
    suite: Suite, leftovers: object
) -> None:
    # The start returns late (held on the loop thread after the run began, as a loaded
    # machine may hold it): Ctrl-C in that window interrupts the main thread's wait for
    # the start, yet the server the run already started is torn down.
    suite.conftest(
        SERVERS_HELPER
        + """
import signal, time
import flowrun.scheduler
from flowrun import task

signal.signal(signal.SIGINT, signal.default_int_handler)

_start = flowrun.scheduler.Scheduler.start

def _late_start(self, *args, **kwargs):
    run = _start(self, *args, **kwargs)
    log("run started")
    time.sleep(3)
    return run

flowrun.scheduler.Scheduler.start = _late_start

@task
async def db():
    proc = start("db")
    yield "db"
    stop(proc)
    log("db down")
"""
    )
    suite.tests("def test_db(db): pass\n")
    process = popen_pytest(suite.path, "--flowrun-report=report.json")
    output, _, took = signal_after(suite, process, [("run started", signal.SIGINT)])
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert took < 10, output
    assert "db down" in suite.log(), output
    assert alive(suite.path) == []
    assert suite.report()["tasks"]["db"]["teardown"]["status"] == "SUCCESS"
