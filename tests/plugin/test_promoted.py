"""Promoted fixtures (issue 14): existing session fixtures join the setup DAG unedited.

``fakeservers.py``, written into the suite and loaded with ``-p fakeservers``, stands in
for pytest-postgresql and pytest-redis: two session generator fixtures that take
``request`` and ``tmp_path_factory``, read an option through ``request.config``, and start
a child process each. Nothing in it knows about flowrun; one ini line promotes them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ._servers import SERVERS_HELPER, is_alive, pids
from ._suite import LOG_HELPER, Suite

DELAY_S = 0.6

FAKE_SERVERS = f"""
import time

import pytest


def pytest_addoption(parser):
    parser.addoption("--postgresql-port", default="5432")
    parser.addoption("--postgresql-fail", action="store_true")
    parser.addini("redis_port", "the redis port", default="6379")


@pytest.fixture(scope="session")
def postgresql_proc(request, tmp_path_factory):
    datadir = tmp_path_factory.mktemp("postgresql")
    port = request.config.getoption("postgresql_port")
    log(f"{{request.fixturename}} start")
    if request.config.getoption("postgresql_fail"):
        raise RuntimeError("port in use")
    proc = start("postgresql")
    request.addfinalizer(lambda: log("postgresql_proc finalizer"))
    time.sleep({DELAY_S})
    log("postgresql_proc ready")
    yield {{"port": port, "datadir": str(datadir)}}
    log("postgresql_proc stop")
    stop(proc)


@pytest.fixture(scope="session")
def redis_proc(request, tmp_path_factory):
    datadir = tmp_path_factory.mktemp("redis")
    port = request.config.getini("redis_port")
    log("redis_proc start")
    proc = start("redis")
    time.sleep({DELAY_S})
    log("redis_proc ready")
    yield {{"port": port, "datadir": str(datadir)}}
    log("redis_proc stop")
    stop(proc)
"""

CONFTEST = """
import pytest


@pytest.fixture(scope="session")
def app(postgresql_proc, redis_proc):
    log("app setup")
    yield "app"
    log("app teardown")
"""

TESTS = """
from pathlib import Path


def test_db(postgresql_proc):
    assert postgresql_proc["port"] == "5433"


def test_cache(redis_proc):
    assert redis_proc["port"] == "6380"


def test_app(app, postgresql_proc, redis_proc):
    assert app == "app"
    # One base temporary directory, though both fixtures created theirs at once.
    assert Path(postgresql_proc["datadir"]).parent == Path(redis_proc["datadir"]).parent


def test_unit():
    pass
"""


@pytest.fixture
def servers(suite: Suite, leftovers: Path) -> Suite:
    """The suite with the stand-in plugin, its user's conftest and tests, promoted by ini."""
    (suite.path / "fakeservers.py").write_text(
        LOG_HELPER + SERVERS_HELPER + FAKE_SERVERS, encoding="utf-8"
    )
    suite.pytester.syspathinsert()
    suite.conftest(CONFTEST)
    suite.tests(TESTS)
    suite.ini("redis_port = 6380", "flowrun_fixtures = postgresql_proc redis_proc")
    return suite


def run(suite: Suite, *args: str) -> pytest.RunResult:
    return suite.run("-p", "fakeservers", "--postgresql-port=5433", *args)


def assert_no_child_left(suite: Suite) -> None:
    started = pids(suite.path)
    assert started, "no server was started"
    assert [name for name, pid in started.items() if is_alive(pid)] == []


def test_promoted_fixtures_overlap_and_their_dependants_wait(servers: Suite) -> None:
    run(servers).assert_outcomes(passed=4)
    times = servers.times()
    starts = (times["postgresql_proc start"], times["redis_proc start"])
    readies = (times["postgresql_proc ready"], times["redis_proc ready"])
    assert max(starts) < min(readies)  # both started before either was ready
    # Serially they take 2 * DELAY_S; together about one.
    assert max(readies) - min(starts) < 1.5 * DELAY_S
    assert times["app setup"] > max(readies)
    assert sorted(pids(servers.path)) == ["postgresql", "redis"]
    assert_no_child_left(servers)


def test_teardown_runs_dependants_first_then_the_finalizers(servers: Suite) -> None:
    run(servers).assert_outcomes(passed=4)
    log = servers.log()
    teardown = log[log.index("app teardown") :]
    assert set(teardown) == {
        "app teardown",
        "postgresql_proc stop",
        "postgresql_proc finalizer",
        "redis_proc stop",
    }
    # A plain fixture using promoted ones first; a finalizer after its fixture's yield.
    assert teardown.index("postgresql_proc stop") < teardown.index("postgresql_proc finalizer")


def test_the_dag_summary_report_and_setup_show_list_them(servers: Suite) -> None:
    result = run(servers, "--flowrun-dag", "--flowrun-report=report.json", "--setup-show")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "dag 'pytest-setup': 2 tasks in 1 level",
            "    postgresql_proc (sync generator)",
            "    redis_proc (sync generator)",
            "*SETUP    S postgresql_proc (fixtures used: tmp_path_factory) [[]flowrun: SUCCESS*",
            "flowrun: 2 tasks run, 0 failed, 0 skipped*",
        ]
    )
    report = servers.report()
    assert sorted(report["tasks"]) == ["postgresql_proc", "redis_proc"]
    assert all(t["status"] == "SUCCESS" for t in report["tasks"].values())


def test_only_what_the_selected_tests_need_runs(servers: Suite) -> None:
    run(servers, "-k", "test_db").assert_outcomes(passed=1, deselected=3)
    assert "redis_proc start" not in servers.log()
    assert sorted(pids(servers.path)) == ["postgresql"]
    assert_no_child_left(servers)


def test_a_failing_promoted_fixture_fails_its_tests_only(servers: Suite) -> None:
    result = run(servers, "--postgresql-fail")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        ["*flowrun: task 'postgresql_proc' failed: RuntimeError: port in use*"]
    )
    assert "app setup" not in servers.log()
    assert sorted(pids(servers.path)) == ["redis"]
    assert_no_child_left(servers)


def test_a_star_promotes_every_session_fixture_but_private_ones(servers: Suite) -> None:
    servers.ini("redis_port = 6380", "flowrun_fixtures = *")
    # pytest-asyncio requests its private session fixtures dynamically: left alone.
    servers.tests(
        "import pytest\n\n@pytest.mark.asyncio\nasync def test_async():\n    pass\n",
        name="test_async.py",
    )
    result = run(servers, "--flowrun-dag")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*app (sync generator) <- postgresql_proc, redis_proc"])
    result.stdout.no_fnmatch_line("*_session_scoped_runner*")
    assert_no_child_left(servers)


def test_the_command_line_option_promotes_too(servers: Suite) -> None:
    servers.ini("redis_port = 6380")
    result = run(servers, "--flowrun-fixture=postgresql_proc", "--flowrun-fixture", "redis_*", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "flowrun: max_parallel=16, timeout=none, fixtures=postgresql_proc redis_*",
            "flowrun: 2 tasks run, 0 failed, 0 skipped*",
        ]
    )


def test_without_the_plugin_they_are_plain_fixtures(servers: Suite) -> None:
    run(servers, "-p", "no:flowrun", "-W", "ignore::pytest.PytestConfigWarning").assert_outcomes(
        passed=4
    )
    times = servers.times()
    assert times["postgresql_proc ready"] < times["redis_proc start"]  # one after the other
    assert_no_child_left(servers)


REFUSED = {
    "unknown": (
        "flowrun_fixtures = postgresql_prc",
        "",
        "ERROR: flowrun: flowrun_fixtures names fixture 'postgresql_prc', which the session "
        "does not know (did you mean 'postgresql_proc'?); fix the name, or remove it from "
        "flowrun_fixtures / --flowrun-fixture",
    ),
    "pattern": (
        "flowrun_fixtures = mysql_*",
        "",
        "ERROR: flowrun: flowrun_fixtures pattern 'mysql_*' matches no session fixture*",
    ),
    "function scope": (
        "flowrun_fixtures = per_test",
        "@pytest.fixture\ndef per_test():\n    return 1\n",
        "ERROR: flowrun: flowrun_fixtures names fixture 'per_test' (conftest.py:*), which has "
        "'function' scope; a task runs once per session: only session-scoped fixtures can "
        "be promoted",
    ),
    "parametrized": (
        "flowrun_fixtures = backend",
        "@pytest.fixture(scope='session', params=['a', 'b'])\ndef backend(request):\n"
        "    return request.param\n",
        "ERROR: flowrun: flowrun_fixtures names fixture 'backend' (conftest.py:*), which is "
        "parametrized; *",
    ),
    "narrower": (
        "flowrun_fixtures = wide",
        "@pytest.fixture\ndef narrow():\n    return 1\n\n"
        "@pytest.fixture(scope='session')\ndef wide(narrow):\n    return narrow\n",
        "ERROR: flowrun: flowrun_fixtures names fixture 'wide' (conftest.py:*), which uses "
        "fixture 'narrow' of 'function' scope; *",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_what_cannot_be_promoted_is_refused_at_collection(servers: Suite, case: str) -> None:
    ini, fixture, line = REFUSED[case]
    servers.ini("redis_port = 6380", ini)
    if fixture:
        servers.conftest(CONFTEST + "\n\n" + fixture)
    result = run(servers)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([line])
    assert pids(servers.path) == {}


REQUEST_MISUSE = """
import pytest


@pytest.fixture(scope="session")
def greedy(request):
    return request.getfixturevalue("tmp_path")


@pytest.fixture(scope="session")
def nosy(request):
    return request.function


@pytest.fixture(scope="session")
def polite(request, tmp_path_factory):
    assert request.getfixturevalue("tmp_path_factory") is tmp_path_factory
    assert request.node is request.session and request.scope == "session"
    return request.fixturename
"""


def test_what_request_cannot_do_from_a_task_fails_it_saying_so(suite: Suite) -> None:
    suite.conftest(REQUEST_MISUSE)
    suite.tests(
        "def test_greedy(greedy): pass\n"
        "def test_nosy(nosy): pass\n"
        "def test_polite(polite):\n    assert polite == 'polite'\n"
    )
    suite.ini("flowrun_fixtures = greedy nosy polite")
    result = suite.run()
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*task 'greedy' failed: LookupError: flowrun: fixture 'greedy' runs as a setup "
            "task and cannot set up fixture 'tmp_path' with request.getfixturevalue*",
            "*task 'nosy' failed: AttributeError: flowrun: fixture 'nosy' runs as a setup "
            "task, where request.function is not available*",
        ]
    )


ASYNC_FIXTURE = """
import asyncio
import threading

import pytest


@pytest.fixture(scope="session")
async def token():
    await asyncio.sleep(0)
    return threading.current_thread().name
"""


def test_an_async_fixture_runs_on_the_setup_loop(suite: Suite) -> None:
    suite.conftest(ASYNC_FIXTURE)
    suite.tests("def test_token(token):\n    assert token == 'flowrun-setup-loop'\n")
    suite.ini("flowrun_fixtures = token")
    suite.run().assert_outcomes(passed=1)


TWO_MKTEMPS = """
import threading

import pytest

_BOTH = threading.Barrier(2, timeout=5)


def _datadir(factory, name):
    # pytest's private attribute: the base directory exists before any task runs.
    log(f"{name} base ready: {factory._basetemp is not None}")
    _BOTH.wait()
    return factory.mktemp(name)


@pytest.fixture(scope="session")
def one(tmp_path_factory):
    return _datadir(tmp_path_factory, "one")


@pytest.fixture(scope="session")
def two(tmp_path_factory):
    return _datadir(tmp_path_factory, "two")
"""


def test_two_fixtures_calling_mktemp_at_once_share_the_base_directory(suite: Suite) -> None:
    suite.conftest(TWO_MKTEMPS)
    suite.tests("def test_dirs(one, two):\n    assert one.parent == two.parent\n")
    suite.ini("flowrun_fixtures = one two")
    suite.run().assert_outcomes(passed=1)
    assert sorted(suite.log()) == ["one base ready: True", "two base ready: True"]
