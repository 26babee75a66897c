"""pytest's semantics with the plugin: what plain fixtures do keeps working, or is refused
up front with a message that says what to do (issue 9).

Parametrized fixtures under a task, tasks asked for with ``request.getfixturevalue`` or
a doctest's ``getfixture``, pytest-rerunfailures, junitxml, ``--setup-show``,
``--durations``, pytest-timeout, and the summary's speed-up claim.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ._suite import Suite

# -- a task fixture that uses a parametrized session fixture ----------------------------

PARAMETRIZED = """
    import pytest
    from flowrun import task

    @pytest.fixture(scope="session", params=["sqlite", "postgres"])
    def backend(request):
        return request.param

    @pytest.fixture(scope="session")
    def scheme(backend):
        return backend + "://"

    @task
    @pytest.fixture(scope="session")
    def database(backend):
        return backend + "://db"

    @task
    @pytest.fixture(scope="session")
    def through(scheme):
        return scheme + "db"
"""


def test_a_task_fixture_using_a_parametrized_session_fixture_is_refused(suite: Suite) -> None:
    suite.conftest(PARAMETRIZED)
    suite.tests("def test_url(database, backend):\n    assert database == backend + '://db'\n")
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: flowrun: task fixture 'database' (conftest.py:*) uses fixture 'backend' "
            "parametrized for 'test_suite.py::test_url[[]sqlite]'; a task runs once per "
            "session, so every parameter would get the first one's value: declare one task "
            "per value (say 'database_<value>') and a fixture parametrized over the values "
            "that takes those tasks as parameters and returns the one for request.param"
        ]
    )


def test_without_the_plugin_the_same_suite_passes(suite: Suite) -> None:
    suite.conftest(PARAMETRIZED)
    suite.tests("def test_url(database, backend):\n    assert database == backend + '://db'\n")
    suite.run("-p", "no:flowrun").assert_outcomes(passed=2)


def test_a_parametrized_fixture_reached_through_another_fixture_is_refused(suite: Suite) -> None:
    suite.conftest(PARAMETRIZED)
    suite.tests("def test_through(through): pass\n")
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: flowrun: task fixture 'through' (*) uses fixture 'scheme', which uses "
            "'backend', parametrized for *"
        ]
    )


def test_a_parametrized_fixture_beside_a_task_is_fine(suite: Suite) -> None:
    suite.conftest(
        PARAMETRIZED
        + """
    @task
    def token():
        return "t"
    """
    )
    suite.tests("def test_both(token, backend):\n    assert token == 't'\n")
    suite.run().assert_outcomes(passed=2)


def test_one_task_per_value_picked_by_a_parametrized_fixture_is_the_alternative(
    suite: Suite,
) -> None:
    suite.conftest(
        """
        import pytest
        from flowrun import task

        @task
        def server():
            return "server"

        @task(deps=[server])
        def database_sqlite(server):
            return "sqlite://" + server

        @task(deps=[server])
        def database_postgres(server):
            return "postgres://" + server

        @pytest.fixture(params=["sqlite", "postgres"])
        def database(request, database_sqlite, database_postgres):
            return {"sqlite": database_sqlite, "postgres": database_postgres}[request.param]
        """
    )
    suite.tests(
        """
        def test_url(database, request):
            backend = request.node.callspec.params["database"]
            assert database == backend + "://server"
        """
    )
    suite.run().assert_outcomes(passed=2)


# -- tasks asked for dynamically -------------------------------------------------------

CHAIN = """
    import pytest
    from flowrun import task

    @task
    def db():
        return "db"

    @task
    @pytest.fixture(scope="session")
    def api(db):
        return "api on " + db

    @task(deps=[api])
    def client(api):
        return "client of " + api
"""


def test_getfixturevalue_of_a_task_with_dependencies_as_the_first_request(suite: Suite) -> None:
    suite.conftest(CHAIN)
    suite.tests(
        """
        def test_dynamic(request):
            assert request.getfixturevalue("client") == "client of api on db"
        """
    )
    result = suite.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["flowrun: 3 tasks run, 0 failed, 0 skipped; *"])


def test_getfixturevalue_joins_the_run_when_the_task_is_in_it(suite: Suite) -> None:
    suite.conftest(CHAIN)
    suite.tests(
        """
        def test_static(client):
            assert client == "client of api on db"

        def test_dynamic(request):
            assert request.getfixturevalue("api") == "api on db"
        """
    )
    suite.run().assert_outcomes(passed=2)


def test_a_doctest_s_getfixture_of_a_task_with_dependencies(suite: Suite) -> None:
    suite.conftest(CHAIN)
    suite.tests(
        '''
        def shown():
            """
            >>> getfixture("client")
            'client of api on db'
            """
        ''',
        name="shop.py",
    )
    suite.run("--doctest-modules", "shop.py").assert_outcomes(passed=1)


def test_a_task_not_in_the_running_run_is_refused_saying_why_and_what_to_do(
    suite: Suite,
) -> None:
    suite.conftest(CHAIN)
    suite.tests(
        """
        def test_first(db):
            pass

        def test_later(request):
            request.getfixturevalue("client")
        """
    )
    result = suite.run()
    result.assert_outcomes(passed=1, errors=0, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*flowrun: task 'api' was requested dynamically (request.getfixturevalue or a "
            "doctest's getfixture) after the setup run had started without it: no collected "
            "test names it, and a run cannot take new tasks once it has started; name 'api' "
            "where collection sees it, as a parameter of the test or of a fixture it uses, "
            "or with @pytest.mark.usefixtures('api')"
        ]
    )


def test_usefixtures_puts_a_dynamically_used_task_in_the_run(suite: Suite) -> None:
    suite.conftest(CHAIN)
    suite.tests(
        """
        import pytest

        def test_first(db):
            pass

        @pytest.mark.usefixtures("client")
        def test_later(request):
            assert request.getfixturevalue("client") == "client of api on db"
        """
    )
    suite.run().assert_outcomes(passed=2)


# -- a failed task: reruns, junitxml ---------------------------------------------------

FAILING = """
    from flowrun import task

    @task
    def db():
        log("db")
        raise RuntimeError("port in use")

    @task(deps=[db])
    def api(db):
        return "api"
"""

TWO_TESTS = """
    def test_db(db): pass
    def test_api(api): pass
"""


def test_reruns_do_not_rerun_a_test_whose_task_failed(suite: Suite) -> None:
    suite.conftest(FAILING)
    suite.tests(TWO_TESTS + "    def test_unrelated(): pass\n")
    result = suite.run("-p", "rerunfailures", "--reruns", "2")
    result.assert_outcomes(passed=1, errors=2)
    assert "rerun" not in result.parseoutcomes()
    assert suite.log() == ["db"]


def test_reruns_still_rerun_a_flaky_test_that_uses_a_task(suite: Suite) -> None:
    suite.conftest("from flowrun import task\n\n@task\ndef db():\n    return 'db'\n")
    suite.tests(
        """
        import itertools
        COUNT = itertools.count()

        def test_flaky(db):
            assert next(COUNT) == 1
        """
    )
    result = suite.run("-p", "rerunfailures", "--reruns", "2")
    assert result.parseoutcomes() == {"passed": 1, "rerun": 1}


def test_junitxml_holds_the_task_s_traceback_once(suite: Suite) -> None:
    suite.conftest(FAILING)
    suite.tests(TWO_TESTS)
    result = suite.run("--junitxml=junit.xml")
    result.assert_outcomes(errors=2)
    cases = {
        case.get("name"): case.find("error")
        for case in ET.parse(suite.path / "junit.xml").iter("testcase")
    }
    first, second = cases["test_db"], cases["test_api"]
    assert first is not None
    assert second is not None
    assert (
        first.get("message")
        == "failed on setup with \"flowrun: task 'db' failed: RuntimeError: port in use\""
    )
    text = first.text or ""
    assert "traceback of task 'db':" in text
    assert 'raise RuntimeError("port in use")' in text
    assert "traceback of task" not in (second.text or "")
    # The terminal still shows one line per test, and the traceback once, in the summary.
    assert result.stdout.str().count('raise RuntimeError("port in use")') == 1


# -- --setup-show and --durations ------------------------------------------------------

TWO_SLOW = """
    import time
    from flowrun import task

    @task
    def slow():
        time.sleep(0.3)
        return 1

    @task
    def quick():
        return 2
"""


def test_setup_show_says_when_each_task_really_ran(suite: Suite) -> None:
    suite.conftest(TWO_SLOW)
    suite.tests("def test_quick(quick): pass\ndef test_slow(slow): pass\n")
    result = suite.run("--setup-show")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "SETUP    S quick* [[]flowrun: SUCCESS, ran 0.0*s-0.0*s into the run[]]",
            "SETUP    S slow* [[]flowrun: SUCCESS, ran 0.0*s-0.3*s into the run[]]",
        ]
    )


def test_durations_points_at_the_per_task_durations(suite: Suite) -> None:
    suite.conftest(TWO_SLOW)
    suite.tests("def test_slow(slow): pass\n")
    result = suite.run("--durations=5", "--flowrun-dag")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*slowest 5 durations*",
            "flowrun: in --durations, a test's setup time is how long it waited for its "
            "tasks, which ran concurrently; each task's own duration is in the flowrun "
            "table (--flowrun-dag)",
        ]
    )
    result.stdout.fnmatch_lines(["slow *SUCCESS *0.00s *0.3*s *1"])


# -- pytest-timeout --------------------------------------------------------------------


def test_a_timeout_while_waiting_names_the_task_waited_on(suite: Suite) -> None:
    suite.conftest(
        """
        import time
        from flowrun import task

        @task
        def stuck():
            time.sleep(3)

        @task(deps=[stuck])
        def api():
            return "api"
        """
    )
    suite.tests("def test_api(api): pass\n")
    result = suite.run_subprocess("-p", "timeout", "--timeout=0.5", "--timeout-method=signal")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*Failed: Timeout (>0.5s) from pytest-timeout.",
            "*flowrun: the test was waiting for task 'stuck' (RUNNING)",
        ]
    )


# -- the summary's speed-up ------------------------------------------------------------


def test_no_speed_up_is_claimed_for_trivial_setup(suite: Suite) -> None:
    suite.conftest("from flowrun import task\n\n@task\ndef db():\n    return 'db'\n")
    suite.tests("def test_db(db): pass\n")
    result = suite.run()
    result.assert_outcomes(passed=1)
    line = next(x for x in result.outlines if x.startswith("flowrun: 1 task run"))
    assert line.startswith("flowrun: 1 task run, 0 failed, 0 skipped; setup 0.0")
    assert "speed-up" not in line


def test_a_speed_up_is_claimed_for_setup_that_takes_time(suite: Suite) -> None:
    suite.conftest(
        """
        import time
        from flowrun import task

        @task
        def one():
            time.sleep(0.2)

        @task
        def two():
            time.sleep(0.2)
        """
    )
    suite.tests("def test_both(one, two): pass\n")
    result = suite.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["flowrun: 2 tasks run, *; setup 0.*s, serial 0.*s, *x speed-up"])
