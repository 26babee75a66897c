"""``--flowrun-loop asyncio-session``: async tasks on pytest-asyncio's session loop, handing
session-loop tests and fixtures live objects; the option, its refusals, and the private
parts of pytest-asyncio it relies on."""

from __future__ import annotations

import asyncio
import inspect
import signal

import pytest

from pytest_flowrun._borrowed_loop import (
    LOOP_FACTORIES_HOOK,
    RUNNER_FIXTURE,
    AsyncioSessionLoop,
)

from ._servers import SERVERS_HELPER, alive, popen_pytest
from ._suite import Suite
from .test_interrupts import signal_after

LIVE_OBJECTS = """
    import asyncio
    import pytest
    import pytest_asyncio
    from flowrun import task

    @task
    async def server():
        async def echo(reader, writer):
            while line := await reader.readline():
                writer.write(line.upper())
                await writer.drain()
            writer.close()
            await writer.wait_closed()

        srv = await asyncio.start_server(echo, "127.0.0.1", 0)
        yield srv
        srv.close()
        await srv.wait_closed()
        log("server down")

    @task(deps=[server])
    async def client(server):
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
        yield reader, writer
        writer.close()
        await writer.wait_closed()
        log("client down")

    @task
    async def queue():
        return asyncio.Queue()

    @pytest_asyncio.fixture(scope="session", loop_scope="session")
    async def greeting(client):
        reader, writer = client
        writer.write(b"hello\\n")
        await writer.drain()
        yield await reader.readline()
        log("greeting down")

    @pytest.fixture(scope="session", autouse=True)
    def pending(_session_scoped_runner):
        # Set up before the run starts, so torn down after it and before the loop closes.
        yield
        loop = _session_scoped_runner.get_loop()
        log(f"pending on the loop: {len(asyncio.all_tasks(loop))}")

    def pytest_unconfigure(config):
        log(f"loop closed: {LOOPS[0].is_closed()}")

    LOOPS = []
"""

LIVE_TESTS = """
    import asyncio
    import pytest
    from conftest import LOOPS

    pytestmark = pytest.mark.asyncio(loop_scope="session")

    async def test_the_client_talks_to_the_server(client):
        reader, writer = client
        writer.write(b"ping\\n")
        await writer.drain()
        assert await reader.readline() == b"PING\\n"
        LOOPS.append(asyncio.get_running_loop())

    async def test_a_new_connection_to_the_server(server, queue):
        host, port = server.sockets[0].getsockname()[:2]
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"pong\\n")
        await writer.drain()
        assert await reader.readline() == b"PONG\\n"
        writer.close()
        await writer.wait_closed()
        await queue.put("from a test")

    async def test_the_queue_keeps_what_a_test_put(queue):
        assert queue.get_nowait() == "from a test"

    async def test_a_session_fixture_used_the_client(greeting, client):
        assert greeting == b"HELLO\\n"
        assert asyncio.get_running_loop() is LOOPS[0]
"""


def loop_suite(suite: Suite, mode: str = "strict", *lines: str) -> None:
    suite.ini(
        f"asyncio_mode = {mode}",
        "flowrun_loop = asyncio-session",
        "filterwarnings = error",
        *lines,
    )


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_tasks_hand_session_loop_tests_live_objects(suite: Suite, mode: str) -> None:
    loop_suite(suite, mode)
    suite.conftest(LIVE_OBJECTS)
    suite.tests(LIVE_TESTS)
    result = suite.run()
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["flowrun: 3 tasks run, 0 failed, 0 skipped*"])
    # Fixtures built on tasks, then the generator tasks (on the open loop, nothing left
    # pending), then pytest-asyncio closes the loop.
    assert suite.log() == [
        "greeting down",
        "client down",
        "server down",
        "pending on the loop: 0",
        "loop closed: True",
    ]


def test_async_tasks_overlap_a_slow_sync_test(suite: Suite) -> None:
    loop_suite(suite)
    suite.conftest(
        """
        import asyncio
        from flowrun import task

        @task
        async def first():
            log("run starts")

        @task
        async def slow_a():
            await asyncio.sleep(0.8)
            log("a done")

        @task
        async def slow_b():
            await asyncio.sleep(0.8)
            log("b done")
        """
    )
    suite.tests(
        """
        import time
        import pytest
        from conftest import log

        def test_slow_sync(first):
            time.sleep(0.8)
            log("sync test done")

        @pytest.mark.asyncio(loop_scope="session")
        async def test_async(slow_a, slow_b):
            log("async test done")
        """
    )
    result = suite.run()
    result.assert_outcomes(passed=2)
    times = suite.times()
    wall = times["async test done"] - times["run starts"]
    assert wall < 0.8 * 3 * 0.6, f"serial would be 2.4s, took {wall:.2f}s"
    assert times["a done"] < times["sync test done"] + 0.2  # they ran during the sync test


def test_in_thread_mode_tasks_keep_their_own_loop(suite: Suite) -> None:
    suite.ini("asyncio_mode = strict", "filterwarnings = error")
    suite.conftest(
        """
        import asyncio, threading
        from flowrun import task

        @task
        async def where():
            return asyncio.get_running_loop(), threading.current_thread().name
        """
    )
    suite.tests(
        """
        import asyncio
        import pytest

        @pytest.mark.asyncio(loop_scope="session")
        async def test_other_loop(where):
            assert where[0] is not asyncio.get_running_loop()
            assert where[1] == "flowrun-setup-loop"
        """
    )
    suite.run().assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "ini", "where"),
    [
        (["--flowrun-loop=nope"], (), "--flowrun-loop='nope'"),
        ([], ("flowrun_loop = nope",), "ini option flowrun_loop='nope'"),
    ],
)
def test_a_bad_loop_mode_is_refused(
    suite: Suite, args: list[str], ini: tuple[str, ...], where: str
) -> None:
    suite.ini(*ini)
    suite.tests("def test_nothing(): pass\n")
    result = suite.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: {where} is invalid: expected one of thread, asyncio-session"]
    )


def test_the_mode_without_pytest_asyncio_is_refused(suite: Suite) -> None:
    suite.tests("def test_nothing(): pass\n")
    result = suite.run("--flowrun-loop", "asyncio-session", "-p", "no:asyncio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --flowrun-loop asyncio-session needs pytest-asyncio 1.2 or later "
            "(tested with 1.2 to 1.5), loaded*"
        ]
    )


def test_a_too_old_pytest_asyncio_is_refused(
    pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("importlib.metadata.version", lambda name: "1.1.1")
    with pytest.raises(
        pytest.UsageError,
        match=r"pytest-asyncio 1\.2 or later \(tested with 1\.2 to 1\.5\), "
        r"found 1\.1\.1: upgrade it, or use --flowrun-loop thread",
    ):
        AsyncioSessionLoop(pytestconfig)


def test_a_pytest_asyncio_without_the_runner_fixture_is_refused(
    pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_asyncio import plugin

    monkeypatch.delattr(plugin, RUNNER_FIXTURE)
    with pytest.raises(
        pytest.UsageError,
        match=r"relies on pytest-asyncio's private fixture '_session_scoped_runner', which "
        r"pytest-asyncio \S+ no longer has \(tested with 1\.2 to 1\.5\)",
    ):
        AsyncioSessionLoop(pytestconfig)


HOOK = LOOP_FACTORIES_HOOK


def test_a_loop_factories_hook_is_refused(suite: Suite) -> None:
    loop_suite(suite)
    suite.conftest(
        f"""
        import asyncio

        def {LOOP_FACTORIES_HOOK}(config, item):
            return {{"default": asyncio.new_event_loop}}
        """
    )
    suite.tests("def test_nothing(): pass\n")
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --flowrun-loop asyncio-session cannot share a session loop that {HOOK}*"]
    )


def test_a_task_requested_from_the_loop_fails_instead_of_hanging(suite: Suite) -> None:
    loop_suite(suite)
    suite.conftest(
        """
        from flowrun import task

        @task
        async def first():
            return 1

        @task
        async def later():
            return 2
        """
    )
    suite.tests(
        """
        import pytest

        def test_starts_the_run(first):
            pass

        @pytest.mark.asyncio(loop_scope="session")
        async def test_asks_on_the_loop(request):
            request.getfixturevalue("later")

        @pytest.mark.usefixtures("later")
        def test_selects_it():
            pass
        """
    )
    result = suite.run_subprocess(timeout=60)
    # pytest keeps a session fixture's error: the later test gets it too.
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*a task was requested from code running on pytest-asyncio's*"])


OTHER_LOOP_TASKS = """
    import asyncio
    from flowrun import task

    @task
    async def queue():
        q = asyncio.Queue()
        q.put_nowait("item")
        return q

    @task
    def plain():
        return "plain"
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_a_test_on_another_loop_needing_an_async_task_fails_instead_of_hanging(
    suite: Suite, mode: str
) -> None:
    loop_suite(suite, mode)
    suite.conftest(OTHER_LOOP_TASKS)
    suite.tests(
        """
        import pytest

        @pytest.fixture
        def wrapped(queue):
            return queue

        @pytest.mark.asyncio
        async def test_function_loop(queue):
            assert await queue.get() == "item"  # would wait forever

        @pytest.mark.asyncio(loop_scope="module")
        async def test_through_a_fixture(wrapped):
            await wrapped.get()

        @pytest.mark.asyncio
        async def test_a_sync_task_is_fine(plain):
            assert plain == "plain"

        @pytest.mark.asyncio(loop_scope="session")
        async def test_session_loop(queue):
            assert await queue.get() == "item"
        """
    )
    result = suite.run_subprocess(timeout=60)
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*test 'test_function_loop' runs on pytest-asyncio's function-scoped loop but "
            "needs async task 'queue'*loop_scope=\"session\"*"
            "asyncio_default_test_loop_scope = session*",
            "*test 'test_through_a_fixture' runs on pytest-asyncio's module-scoped loop*",
        ]
    )


def test_the_ini_default_loop_scope_session_is_enough(suite: Suite) -> None:
    loop_suite(suite, "auto", "asyncio_default_test_loop_scope = session")
    suite.conftest(OTHER_LOOP_TASKS)
    suite.tests(
        """
        async def test_default_loop(queue):
            assert await queue.get() == "item"
        """
    )
    suite.run_subprocess(timeout=60).assert_outcomes(passed=1)


#: How each mode declares a fixture that pytest-asyncio runs on its default loop.
ASYNC_FIXTURE = {"strict": "@pytest_asyncio.fixture", "auto": "@pytest.fixture"}


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_an_async_fixture_on_another_loop_needing_an_async_task_fails_instead_of_hanging(
    suite: Suite, mode: str
) -> None:
    loop_suite(suite, mode)
    suite.conftest(OTHER_LOOP_TASKS)
    suite.tests(
        f"""
        import pytest
        import pytest_asyncio

        {ASYNC_FIXTURE[mode]}
        async def first_item(queue):
            return await queue.get()  # would wait forever on the function-scoped loop

        @pytest.fixture
        def wrapped(queue):
            return queue

        @pytest_asyncio.fixture(scope="module", loop_scope="module")
        async def through_a_fixture(wrapped):
            return await wrapped.get()

        {ASYNC_FIXTURE[mode]}
        async def from_a_sync_task(plain):
            return plain.upper()

        @pytest_asyncio.fixture(loop_scope="session")
        async def on_the_session_loop(queue):
            return await queue.get()

        def test_a_sync_test(first_item):
            pass

        @pytest.mark.asyncio(loop_scope="session")
        async def test_a_session_loop_test(through_a_fixture):
            pass

        def test_a_sync_task_is_fine(from_a_sync_task):
            assert from_a_sync_task == "PLAIN"

        def test_a_session_loop_fixture(on_the_session_loop):
            assert on_the_session_loop == "item"
        """
    )
    result = suite.run_subprocess(timeout=60)
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*fixture 'first_item' (of test 'test_a_sync_test') runs on pytest-asyncio's "
            "function-scoped loop but needs async task 'queue'*"
            '@pytest_asyncio.fixture(loop_scope="session")*'
            "asyncio_default_fixture_loop_scope = session*",
            "*fixture 'through_a_fixture' (of test 'test_a_session_loop_test') runs on "
            "pytest-asyncio's module-scoped loop but needs async task 'queue'*",
        ]
    )


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_an_async_task_requested_dynamically_from_another_loop_fails_instead_of_hanging(
    suite: Suite, mode: str
) -> None:
    # No check before setup can see request.getfixturevalue in a fixture's body: the
    # request itself is refused, from the function-scoped loop it comes from.
    loop_suite(suite, mode)
    suite.conftest(OTHER_LOOP_TASKS)
    suite.tests(
        f"""
        import pytest
        import pytest_asyncio

        @pytest.fixture(scope="session", autouse=True)
        def session_runner_first(_session_scoped_runner):
            # pytest-asyncio 1.2 and 1.3 leak an event loop (a ResourceWarning at exit)
            # when a narrower runner is set up before the session one, flowrun or not.
            return _session_scoped_runner

        {ASYNC_FIXTURE[mode]}
        async def first_item(request):
            queue = request.getfixturevalue("queue")
            return await queue.get()  # would wait forever on the function-scoped loop

        {ASYNC_FIXTURE[mode]}
        async def from_a_sync_task(request):
            return request.getfixturevalue("plain").upper()

        def test_dynamic(first_item):
            pass

        def test_a_sync_task_is_fine(from_a_sync_task, plain):  # plain: in the run
            assert from_a_sync_task == "PLAIN"
        """
    )
    result = suite.run_subprocess(timeout=60)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*flowrun: async task 'queue' was requested from code running on another event "
            "loop than pytest-asyncio's session loop*loop_scope=*session*",
        ]
    )


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_the_ini_default_fixture_loop_scope_session_is_enough(suite: Suite, mode: str) -> None:
    # BASE_INI's asyncio_default_fixture_loop_scope is function: this suite needs its own ini.
    suite.pytester.makeini(
        "[pytest]\n"
        f"asyncio_mode = {mode}\n"
        "flowrun_loop = asyncio-session\n"
        "filterwarnings = error\n"
        "asyncio_default_fixture_loop_scope = session\n"
    )
    suite.conftest(OTHER_LOOP_TASKS)
    suite.tests(
        f"""
        import pytest
        import pytest_asyncio

        {ASYNC_FIXTURE[mode]}
        async def first_item(queue):
            return await queue.get()

        def test_a_sync_test(first_item):
            assert first_item == "item"
        """
    )
    suite.run_subprocess(timeout=60).assert_outcomes(passed=1)


#: A server (a child process) started by an async generator task, another still starting,
#: and a session-loop test that holds the loop when the signal comes.
HAND_OVER = (
    SERVERS_HELPER
    + """
import asyncio, signal, time
from flowrun import task

# A background job may inherit SIGINT ignored; this suite is about Ctrl-C.
signal.signal(signal.SIGINT, signal.default_int_handler)

@task
async def server():
    proc = start("server")
    yield "server"
    stop(proc)
    log("server down")

@task
async def starting():
    proc = start("starting")
    try:
        await asyncio.sleep(30)  # still starting when the signal comes
        yield "starting"
    finally:
        stop(proc)
        log("starting stopped")

@task(deps=[server])
async def blocking(server):
    await asyncio.sleep(0.3)  # after the run's start returned to the main thread
    log("loop held")
    time.sleep(2)  # blocks the loop, as sync code in an async task does
"""
)


#: What holds the session loop when the signal comes: a test, a session fixture, or a
#: task while the main thread waits to take the loop over.
HOLDERS = {
    "test": """
        @pytest.mark.asyncio(loop_scope="session")
        async def test_holds_the_loop(server):
            log("loop held")
            await asyncio.sleep(30)
    """,
    "fixture": """
        @pytest_asyncio.fixture(scope="session", loop_scope="session")
        async def holding(server):
            log("loop held")
            await asyncio.sleep(30)
            yield

        @pytest.mark.asyncio(loop_scope="session")
        async def test_holds_the_loop(holding):
            pass
    """,
    # A task blocks the loop: the main thread waits in the hand-over for the driver.
    "hand-over": """
        @pytest.mark.asyncio(loop_scope="session")
        async def test_holds_the_loop(server):
            log("test ran")

        def test_blocking(blocking):
            pass
    """,
}


@pytest.mark.parametrize("holder", sorted(HOLDERS))
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_hand_over_exits_and_tears_the_tasks_down(
    suite: Suite, leftovers: object, signum: int, holder: str
) -> None:
    loop_suite(suite)
    suite.conftest(HAND_OVER)
    suite.tests(
        """
        import asyncio
        import pytest
        import pytest_asyncio
        from conftest import log
        """
        + HOLDERS[holder]
        + """
        def test_later(starting):
            pass
        """
    )
    process = popen_pytest(suite.path)
    output, _, took = signal_after(suite, process, [("loop held", signum)])
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert took < 10, output
    assert {"server down", "starting stopped"} <= set(suite.log()), output
    assert alive(suite.path) == []
    assert "RuntimeWarning" not in output
    assert "never awaited" not in output
    assert "Task was destroyed" not in output


# -- the private parts of pytest-asyncio the mode relies on: these fail when they change --


def test_pytest_asyncio_keeps_the_session_loop_in_a_runner_fixture() -> None:
    from pytest_asyncio import plugin

    assert RUNNER_FIXTURE in vars(plugin), "pytest-asyncio renamed its session runner fixture"
    # The portal shadows the runner's ``run`` on the instance.
    assert "__slots__" not in vars(asyncio.Runner)
    assert "context" in inspect.signature(asyncio.Runner.run).parameters


def test_pytest_asyncio_runs_session_loop_tests_through_the_runner(suite: Suite) -> None:
    suite.ini("asyncio_mode = strict")
    suite.conftest(
        """
        import pytest

        CALLS = []

        @pytest.fixture(scope="session", autouse=True)
        def spy(_session_scoped_runner):
            original = _session_scoped_runner.run

            def run(coro, *, context=None):
                CALLS.append(coro.__qualname__)
                return original(coro, context=context)

            _session_scoped_runner.run = run
            yield
            del _session_scoped_runner.run
        """
    )
    suite.tests(
        """
        import asyncio
        import pytest
        import pytest_asyncio
        from conftest import CALLS

        @pytest_asyncio.fixture(scope="session", loop_scope="session")
        async def value():
            return asyncio.get_running_loop()

        @pytest.mark.asyncio(loop_scope="session")
        async def test_one(value, _session_scoped_runner):
            assert asyncio.get_running_loop() is value is _session_scoped_runner.get_loop()

        def test_the_runner_ran_them():
            assert len(CALLS) == 2, CALLS
        """
    )
    suite.run().assert_outcomes(passed=2)


#: A suite whose tests and fixtures compare the loop pytest-asyncio ran them on with the
#: loop scope flowrun reads for them (``_test_loop_scope``, ``_fixture_loop_scope``).
READINGS = """
    import asyncio
    import pytest
    import pytest_asyncio
    from pytest_flowrun._borrowed_loop import _fixture_loop_scope, _test_loop_scope

    SCOPES = ("function", "class", "module", "package", "session")

    @pytest.fixture(scope="session", autouse=True)
    def session_runner_first(_session_scoped_runner):
        # pytest-asyncio 1.2 and 1.3 leak an event loop (a ResourceWarning at exit) when a
        # narrower runner is set up before the session one, flowrun or not.
        return _session_scoped_runner

    @pytest.fixture
    def scope_of(request):
        loops = {
            request.getfixturevalue(f"_{scope}_scoped_runner").get_loop(): scope
            for scope in SCOPES
        }
        return loops.__getitem__

    @pytest.fixture
    def read(request):
        def read(name):
            manager = request.session._fixturemanager
            fixturedef = manager.getfixturedefs(name, request.node)[-1]
            return _fixture_loop_scope(fixturedef, request.config)

        return read

    @pytest_asyncio.fixture
    async def decorated():
        return asyncio.get_running_loop()

    @pytest_asyncio.fixture(loop_scope="session")
    async def session_loop():
        return asyncio.get_running_loop()

    @pytest_asyncio.fixture(scope="module", loop_scope="module")
    async def module_loop():
        return asyncio.get_running_loop()

    @pytest.fixture
    async def undecorated():  # requested in auto mode only
        return asyncio.get_running_loop()

    @pytest.fixture
    def sync():
        return None
"""


@pytest.mark.parametrize("default", ["function", "session"])
@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_pytest_asyncio_runs_tests_and_fixtures_on_the_loops_flowrun_reads(
    suite: Suite, mode: str, default: str
) -> None:
    suite.pytester.makeini(
        "[pytest]\n"
        f"asyncio_mode = {mode}\n"
        f"asyncio_default_fixture_loop_scope = {default}\n"
        f"asyncio_default_test_loop_scope = {default}\n"
        "filterwarnings = error\n"
    )
    suite.conftest(READINGS)
    undecorated = ", undecorated" if mode == "auto" else ""
    suite.tests(
        f"""
        import asyncio
        import pytest
        from pytest_flowrun._borrowed_loop import _test_loop_scope

        def test_the_fixtures(scope_of, read, decorated, session_loop, module_loop{undecorated}):
            ran = {{"decorated": decorated, "session_loop": session_loop}}
            ran["module_loop"] = module_loop
            if "{undecorated}":
                ran["undecorated"] = undecorated
            assert {{name: read(name) for name in ran}} == {{
                name: scope_of(loop) for name, loop in ran.items()
            }}
            assert read("sync") is None
            assert read("undecorated") == ("{default}" if "{mode}" == "auto" else None)

        @pytest.mark.asyncio
        async def test_default(request, scope_of):
            assert _test_loop_scope(request.node) == scope_of(asyncio.get_running_loop())

        @pytest.mark.asyncio(loop_scope="module")
        async def test_module(request, scope_of):
            assert _test_loop_scope(request.node) == scope_of(asyncio.get_running_loop())

        @pytest.mark.asyncio(loop_scope="session")
        async def test_session(request, scope_of):
            assert _test_loop_scope(request.node) == scope_of(asyncio.get_running_loop())
        """
    )
    suite.run().assert_outcomes(passed=4)
