"""Declaring setup: setup steps and task fixtures in conftest files, and their parameters."""

from __future__ import annotations

from ._suite import Suite


class TestSetupSteps:
    def test_a_task_in_a_conftest_is_a_session_fixture_named_after_it(self, suite: Suite) -> None:
        suite.conftest(
            """
            from flowrun import task

            @task
            def db():
                log("db")
                return "db-url"
            """
        )
        suite.tests(
            """
            def test_one(db):
                assert db == "db-url"

            def test_two(db):
                assert db == "db-url"
            """
        )
        suite.run().assert_outcomes(passed=2)
        assert suite.log() == ["db"]

    def test_task_name_deps_and_parent_arguments_apply(self, suite: Suite) -> None:
        suite.conftest(
            """
            from flowrun import task

            @task(name="database")
            def start_db():
                return "db"

            @task(deps=["database"])
            def migrate(database):
                return database + "+schema"

            @task(deps=[start_db, migrate])
            def seed(upstream):
                return sorted(upstream)
            """
        )
        suite.tests(
            """
            def test_seed(seed, migrate, database):
                assert seed == ["database", "migrate"]
                assert migrate == "db+schema"
                assert database == "db"
            """
        )
        suite.run().assert_outcomes(passed=1)

    def test_sync_async_and_generator_tasks_run_and_tear_down(self, suite: Suite) -> None:
        suite.conftest(
            """
            import asyncio
            from flowrun import task

            @task
            def plain():
                return "plain"

            @task
            async def coroutine():
                await asyncio.sleep(0)
                return "coroutine"

            @task
            def generator():
                yield "generator"
                log("generator down")

            @task
            async def async_generator():
                yield "async generator"
                await asyncio.sleep(0)
                log("async generator down")
            """
        )
        suite.tests(
            """
            def test_all(plain, coroutine, generator, async_generator):
                assert [plain, coroutine, generator, async_generator] == [
                    "plain", "coroutine", "generator", "async generator"
                ]
            """
        )
        suite.run().assert_outcomes(passed=1)
        assert sorted(suite.log()) == ["async generator down", "generator down"]

    def test_retries_apply(self, suite: Suite) -> None:
        suite.conftest(
            """
            from flowrun import task

            attempts = []

            @task(retries=2)
            def flaky():
                attempts.append(1)
                if len(attempts) < 3:
                    raise ConnectionError("not yet")
                return len(attempts)
            """
        )
        suite.tests("def test_flaky(flaky):\n    assert flaky == 3\n")
        suite.run().assert_outcomes(passed=1)

    def test_a_task_imported_into_a_conftest_is_found_there_once(self, suite: Suite) -> None:
        (suite.path / "setup_tasks.py").write_text(
            "from flowrun import task\n\n@task\ndef db():\n    return 'db'\n"
        )
        suite.conftest("from setup_tasks import db\n")
        suite.conftest("from setup_tasks import db\n", where="sub")
        suite.tests("def test_db(db):\n    assert db == 'db'\n", name="sub/test_sub.py")
        suite.run().assert_outcomes(passed=1)

    def test_a_plugin_module_named_in_pytest_plugins_provides_tasks(self, suite: Suite) -> None:
        (suite.path / "setup_plugin.py").write_text(
            "from flowrun import task\n\n@task\ndef db():\n    return 'db'\n"
        )
        suite.conftest('pytest_plugins = ["setup_plugin"]\n')
        suite.tests("def test_db(db):\n    assert db == 'db'\n")
        suite.run().assert_outcomes(passed=1)

    def test_tasks_in_test_modules_are_not_setup_steps(self, suite: Suite) -> None:
        suite.tests(
            """
            from flowrun import task

            @task
            def helper():
                return 1

            def test_helper_is_a_plain_function():
                assert helper() == 1
            """
        )
        result = suite.run()
        result.assert_outcomes(passed=1)
        result.stdout.no_fnmatch_line("flowrun:*")


class TestNestedConftests:
    def test_tasks_are_found_at_every_level_and_scoped_to_their_directory(
        self, suite: Suite
    ) -> None:
        suite.conftest(
            """
            from flowrun import task

            @task
            def root_step():
                return "root"
            """
        )
        suite.conftest(
            """
            from flowrun import task

            @task(deps=["root_step"])
            def inner_step(root_step):
                return root_step + "/inner"
            """,
            where="a/b",
        )
        suite.tests(
            "def test_inner(inner_step):\n    assert inner_step == 'root/inner'\n",
            name="a/b/test_inner.py",
        )
        suite.tests("def test_outside(inner_step): pass\n", name="c/test_outside.py")
        result = suite.run()
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(["*fixture 'inner_step' not found*"])


class TestTaskFixtures:
    def test_task_above_fixture_joins_the_dag(self, suite: Suite) -> None:
        suite.conftest(
            """
            import pytest
            from flowrun import task

            @task
            def db():
                return "db"

            @task
            @pytest.fixture(scope="session")
            def schema(db):
                log(f"schema on {db}")
                return db + "+schema"
            """
        )
        suite.tests("def test_schema(schema):\n    assert schema == 'db+schema'\n")
        result = suite.run("--flowrun-dag")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*schema (sync) <- db*"])
        assert suite.log() == ["schema on db"]

    def test_a_parameter_naming_a_task_is_a_dependency_receiving_its_value(
        self, suite: Suite
    ) -> None:
        suite.conftest(
            """
            import pytest
            from flowrun import task

            @task
            @pytest.fixture(scope="session")
            def api():
                log("api")
                return "http://api"

            @task
            @pytest.fixture(scope="session")
            def token(api):
                log("token")
                return f"token from {api}"
            """
        )
        suite.tests("def test_token(token):\n    assert token == 'token from http://api'\n")
        suite.run("--flowrun-report=report.json").assert_outcomes(passed=1)
        assert suite.log() == ["api", "token"]
        assert suite.report()["tasks"]["token"]["deps"] == ["api"]

    def test_a_parameter_naming_a_session_fixture_is_resolved_by_pytest(self, suite: Suite) -> None:
        suite.conftest(
            """
            import pytest
            from flowrun import task

            @pytest.fixture(scope="session")
            def settings():
                return {"port": 5432}

            @task
            @pytest.fixture(scope="session")
            def db(settings, tmp_path_factory):
                return (settings["port"], tmp_path_factory.mktemp("db").name)
            """
        )
        suite.tests("def test_db(db):\n    assert db[0] == 5432 and db[1].startswith('db')\n")
        suite.run().assert_outcomes(passed=1)

    def test_a_session_fixture_may_use_a_task(self, suite: Suite) -> None:
        suite.conftest(
            """
            import pytest
            from flowrun import task

            @task
            def server():
                yield "server"
                log("server down")

            @pytest.fixture(scope="session")
            def client(server):
                yield f"client of {server}"
                log("client down")
            """
        )
        suite.tests("def test_client(client):\n    assert client == 'client of server'\n")
        suite.run().assert_outcomes(passed=1)
        assert suite.log() == ["client down", "server down"]

    def test_task_fixtures_may_be_async_and_generators(self, suite: Suite) -> None:
        suite.conftest(
            """
            import asyncio
            import pytest
            from flowrun import task

            @task
            @pytest.fixture(scope="session")
            async def service():
                await asyncio.sleep(0)
                yield "service"
                await asyncio.sleep(0)
                log("service down")
            """
        )
        suite.tests("def test_service(service):\n    assert service == 'service'\n")
        suite.run().assert_outcomes(passed=1)
        assert suite.log() == ["service down"]

    def test_an_autouse_task_fixture_runs_for_every_test(self, suite: Suite) -> None:
        suite.conftest(
            """
            import pytest
            from flowrun import task

            @task
            @pytest.fixture(scope="session", autouse=True)
            def environment():
                log("environment")
            """
        )
        suite.tests("def test_one(): pass\n\ndef test_two(): pass\n")
        suite.run().assert_outcomes(passed=2)
        assert suite.log() == ["environment"]

    def test_the_run_context_comes_from_the_hook(self, suite: Suite) -> None:
        suite.conftest(
            """
            from dataclasses import dataclass
            from flowrun import RunContext, task

            @dataclass(frozen=True)
            class Deps:
                base_url: str

            def pytest_flowrun_context(config):
                return Deps(base_url="http://example")

            @task
            def fetch(context: RunContext[Deps]):
                return context.base_url + "/user"
            """
        )
        suite.tests("def test_fetch(fetch):\n    assert fetch == 'http://example/user'\n")
        suite.run().assert_outcomes(passed=1)

    def test_a_task_fixture_may_take_the_context_and_upstream_which_pytest_never_sees(
        self, suite: Suite
    ) -> None:
        suite.conftest(
            """
            import pytest
            from flowrun import RunContext, task

            def pytest_flowrun_context(config):
                return RunContext({"region": "eu"})

            @task
            def db():
                return "db"

            @task(deps=[db])
            @pytest.fixture(scope="session")
            def api(context: RunContext, upstream, tmp_path_factory):
                return (context.deps["region"], upstream, tmp_path_factory is not None)
            """
        )
        suite.tests("def test_api(api):\n    assert api == ('eu', {'db': 'db'}, True)\n")
        result = suite.run("--setup-show")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            ["*SETUP    S api (fixtures used: db, tmp_path_factory) [[]flowrun: SUCCESS, ran *"]
        )

    def test_a_task_needing_a_context_without_the_hook_errors_saying_so(self, suite: Suite) -> None:
        suite.conftest(
            """
            from flowrun import RunContext, task

            @task
            def fetch(context: RunContext):
                return 1
            """
        )
        suite.tests("def test_fetch(fetch): pass\n")
        result = suite.run()
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            ["*task 'fetch' takes a RunContext (parameter 'context')*pytest_flowrun_context*"]
        )


class TestFixtureTooling:
    def test_dash_dash_fixtures_lists_tasks_with_their_docstrings(self, suite: Suite) -> None:
        suite.conftest(
            """
            import pytest
            from flowrun import task

            @task
            def db():
                \"\"\"Start the test database.\"\"\"

            @task
            @pytest.fixture(scope="session")
            def api():
                \"\"\"Start the API stub.\"\"\"
            """
        )
        suite.tests("def test_nothing(): pass\n")
        result = suite.run("--fixtures")
        result.stdout.fnmatch_lines(
            [
                "db [[]session scope[]] -- conftest.py:*",
                "    Start the test database.",
            ]
        )
        result.stdout.fnmatch_lines(
            ["api [[]session scope[]] -- conftest.py:*", "    Start the API stub."]
        )
        assert not suite.log()

    def test_setup_show_shows_tasks_and_their_dependencies(self, suite: Suite) -> None:
        suite.conftest(
            """
            from flowrun import task

            @task(deps=["db"])  # declared above the task it depends on
            def migrate(db):
                return 2

            @task
            def db():
                return 1
            """
        )
        suite.tests("def test_migrate(migrate): pass\n")
        result = suite.run("--setup-show")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [
                "*SETUP    S db [[]flowrun: SUCCESS, ran *",
                "*SETUP    S migrate (fixtures used: db) [[]flowrun: SUCCESS, ran *",
                "*TEARDOWN S migrate",
            ]
        )

    def test_setup_plan_runs_nothing(self, suite: Suite) -> None:
        suite.conftest(
            """
            from flowrun import task

            @task
            def db():
                log("db ran")
            """
        )
        suite.tests("def test_db(db): pass\n")
        result = suite.run("--setup-plan")
        result.stdout.fnmatch_lines(["*SETUP    S db"])
        assert not suite.log()
        result.stdout.no_fnmatch_line("flowrun:*")
