"""Bad input: every mistake stops the session before anything runs, naming the culprit."""

from __future__ import annotations

import pytest

from ._suite import Suite

USES_DB = "def test_db(db): pass\n"


@pytest.mark.parametrize(
    ("args", "ini_lines", "message"),
    [
        (
            ["--flowrun-max-parallel=abc"],
            [],
            "--flowrun-max-parallel='abc' is invalid: expected a whole number >= 1",
        ),
        (
            ["--flowrun-max-parallel=0"],
            [],
            "--flowrun-max-parallel='0' is invalid: expected a whole number >= 1",
        ),
        (
            [],
            ["flowrun_max_parallel = two"],
            "ini option flowrun_max_parallel='two' is invalid: expected a whole number >= 1",
        ),
        (
            ["--flowrun-timeout=soon"],
            [],
            "--flowrun-timeout='soon' is invalid: expected a number of seconds > 0, "
            "or 0 or 'none' for no default timeout",
        ),
        (
            [],
            ["flowrun_timeout = -1"],
            "ini option flowrun_timeout='-1' is invalid: expected a number of seconds > 0*",
        ),
        (
            [],
            ["flowrun_dag = maybe"],
            "ini option flowrun_dag='maybe' is invalid: expected one of 1, true, yes, on, "
            "0, false, no, off",
        ),
        (["--flowrun-report="], [], "--flowrun-report needs a file path, got ''"),
    ],
    ids=[
        "max-parallel-not-a-number",
        "max-parallel-zero",
        "ini-max-parallel-not-a-number",
        "timeout-not-a-number",
        "ini-timeout-negative",
        "ini-dag-not-a-bool",
        "report-without-path",
    ],
)
def test_bad_option_values_are_usage_errors_naming_the_option_and_valid_values(
    suite: Suite, args: list[str], ini_lines: list[str], message: str
) -> None:
    suite.ini(*ini_lines)
    suite.tests("def test_plain(): pass\n")
    result = suite.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


BAD_DECLARATIONS = {
    "task-fixture-using-a-function-scoped-fixture": (
        """
        import pytest
        from flowrun import task

        @task
        @pytest.fixture(scope="session")
        def db(tmp_path):
            return tmp_path
        """,
        "flowrun: task fixture 'db' (conftest.py:*) uses fixture 'tmp_path' (*), which has "
        "'function' scope; a task runs once per session, so it can only use session-scoped "
        "fixtures",
    ),
    "task-and-fixture-with-the-same-name": (
        """
        import pytest
        from flowrun import task

        @task
        def db():
            return 1
        """,
        "flowrun: task 'db' (conftest.py:*) and fixture 'db' (test_suite.py:*) have the same "
        "name; rename one of them",
    ),
    "fixture-above-task": (
        """
        import pytest
        from flowrun import task

        @pytest.fixture(scope="session")
        @task
        def db():
            return 1
        """,
        "flowrun: fixture 'db' (conftest.py:*) has @pytest.fixture above @task; put @task "
        "above @pytest.fixture (@task must be the outer decorator)",
    ),
    "task-fixture-not-session-scoped": (
        """
        import pytest
        from flowrun import task

        @task
        @pytest.fixture
        def db():
            return 1
        """,
        "flowrun: task fixture 'db' (conftest.py:*) has scope 'function'; a task runs once per "
        "session: declare it @pytest.fixture(scope='session')",
    ),
    "parametrized-task-fixture": (
        """
        import pytest
        from flowrun import task

        @task
        @pytest.fixture(scope="session", params=[1, 2])
        def db(request):
            return 1
        """,
        "flowrun: task fixture 'db' (conftest.py:*) is parametrized; a task runs once per "
        "session, without params",
    ),
    "task-fixture-taking-request": (
        """
        import pytest
        from flowrun import task

        @task
        @pytest.fixture(scope="session")
        def db(request):
            return 1
        """,
        "flowrun: task fixture 'db' (conftest.py:*) takes 'request'; a task cannot use pytest's "
        "request object",
    ),
    "task-fixture-with-an-unknown-parameter": (
        """
        import pytest
        from flowrun import task

        @task
        @pytest.fixture(scope="session")
        def db(nowhere):
            return 1
        """,
        "flowrun: task fixture 'db' (conftest.py:*) takes parameter 'nowhere', which is neither "
        "a task nor a fixture visible to 'test_suite.py::test_db'",
    ),
    "task-fixture-using-a-fixture-that-needs-a-task": (
        """
        import pytest
        from flowrun import task

        @task
        def server():
            return "server"

        @pytest.fixture(scope="session")
        def settings(server):
            return {"server": server}

        @task
        @pytest.fixture(scope="session")
        def db(settings):
            return 1
        """,
        "flowrun: task fixture 'db' (conftest.py:*) uses fixture 'settings', which needs task "
        "'server'; the fixtures a task uses are set up before the run starts: make 'settings' "
        "a task",
    ),
    "missing-dependency": (
        """
        from flowrun import task

        @task
        def database():
            pass

        @task(deps=["databse"])
        def db():
            pass
        """,
        "flowrun: task 'db' depends on 'databse', which is not registered (did you mean "
        "'database'?)",
    ),
    "cycle": (
        """
        import pytest
        from flowrun import task

        @task
        @pytest.fixture(scope="session")
        def db(cache_):
            pass

        @task
        @pytest.fixture(scope="session")
        def cache_(db):
            pass
        """,
        "flowrun: tasks depend on each other in a cycle: db -> cache_ -> db *",
    ),
}


@pytest.mark.parametrize(
    ("source", "message"), list(BAD_DECLARATIONS.values()), ids=list(BAD_DECLARATIONS)
)
def test_bad_declarations_stop_the_session_before_anything_runs(
    suite: Suite, source: str, message: str
) -> None:
    suite.conftest(source)
    tests = USES_DB
    if "same-name" in message or "have the same name" in message:
        tests = "import pytest\n\n@pytest.fixture\ndef db():\n    return 2\n\n" + USES_DB
    suite.tests(tests)
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_every_problem_is_listed_at_once(suite: Suite) -> None:
    suite.conftest(
        """
        import pytest
        from flowrun import task

        @pytest.fixture(scope="session")
        @task
        def one():
            pass

        @task
        @pytest.fixture
        def two():
            pass
        """
    )
    suite.tests("def test_plain(): pass\n")
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: flowrun found problems in the setup tasks:",
            "  - fixture 'one' (conftest.py:*) has @pytest.fixture above @task; *",
            "  - task fixture 'two' (conftest.py:*) has scope 'function'; *",
        ]
    )


def test_the_same_task_name_in_two_conftests_names_both(suite: Suite) -> None:
    suite.conftest("from flowrun import task\n\n@task\ndef db():\n    pass\n", where="a")
    suite.conftest("from flowrun import task\n\n@task\ndef db():\n    pass\n", where="b")
    suite.tests(USES_DB, name="a/test_a.py")
    suite.tests(USES_DB, name="b/test_b.py")
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: flowrun: task 'db' is defined twice: in a/conftest.py:* and in b/conftest.py:*"]
    )


def test_fixture_above_task_with_a_fixture_parameter_says_the_right_order(suite: Suite) -> None:
    suite.conftest(
        """
        import pytest
        from flowrun import task

        @pytest.fixture(scope="session")
        @task
        def db(tmp_path_factory):
            pass
        """
    )
    suite.tests(USES_DB)
    result = suite.run()
    assert result.ret != pytest.ExitCode.OK
    assert "put @task above @pytest.fixture" in result.stdout.str() + result.stderr.str()


def test_a_bad_declaration_outside_the_selection_still_stops_the_session(suite: Suite) -> None:
    suite.conftest(BAD_DECLARATIONS["fixture-above-task"][0])
    suite.tests("def test_plain(): pass\n")
    assert suite.run("--collect-only").ret == pytest.ExitCode.USAGE_ERROR


def test_two_functions_registered_under_one_task_name_fail_at_import(suite: Suite) -> None:
    suite.conftest("from flowrun import task\n\n@task\ndef db():\n    pass\n", where="a")
    suite.conftest(
        "from flowrun import task\n\n@task(name='db')\ndef other():\n    pass\n", where="b"
    )
    suite.tests(USES_DB, name="a/test_a.py")
    result = suite.run()
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*DuplicateTaskError: task name 'db' is already taken by *"])


def test_a_fixture_the_first_test_needing_setup_cannot_see_is_named(suite: Suite) -> None:
    suite.conftest("from flowrun import task\n\n@task\ndef db():\n    pass\n")
    suite.conftest(
        """
        import pytest
        from flowrun import task

        @pytest.fixture(scope="session")
        def local_settings():
            return {}

        @task
        @pytest.fixture(scope="session")
        def api(local_settings):
            pass
        """,
        where="b",
    )
    suite.tests(USES_DB, name="a/test_a.py")
    suite.tests("def test_api(api): pass\n", name="b/test_b.py")
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: flowrun: task fixture 'api' (b/conftest.py:*) uses fixture 'local_settings', "
            "which 'a/test_a.py::test_db' cannot see; *"
        ]
    )


def test_a_report_path_that_cannot_be_written_is_named(suite: Suite) -> None:
    suite.conftest("from flowrun import task\n\n@task\ndef db():\n    pass\n")
    suite.tests(USES_DB)
    (suite.path / "taken").mkdir()
    result = suite.run("--flowrun-report=taken")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: flowrun: cannot write the report to '*taken'*"])
