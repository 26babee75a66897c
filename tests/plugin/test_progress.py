"""Live progress: once a test has waited a while for its tasks, what it waits for and what runs.

``FLOWRUN_PROGRESS_S`` ("threshold,interval") shortens the 2-second threshold for these
tests. pytester's output is not a terminal, so the progress comes as plain lines; the
in-place line of a terminal was tried by hand (see the README).
"""

from __future__ import annotations

import re

import pytest

from ._suite import Suite

SETUP = """
    import asyncio
    import time
    from flowrun import task

    @task
    def database():
        time.sleep(1.6)
        return "postgres://app:s3cret@db/app"

    @task
    async def redis():
        await asyncio.sleep(1.2)
        return "redis"

    @task
    def quick():
        return "quick"
"""

TESTS = """
    def test_quick(quick):
        assert quick == "quick"

    def test_database(database):
        assert database

    def test_redis(redis):
        assert redis == "redis"
"""

LINE = re.compile(r"^flowrun: (\S+) waits (\d+\.\d)s for (\w+); running: (.*)$")


def progress_lines(result: pytest.RunResult) -> list[re.Match[str]]:
    return [m for line in result.outlines if (m := LINE.match(line))]


@pytest.fixture
def slow(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> Suite:
    suite.conftest(SETUP)
    suite.tests(TESTS)
    return suite


def test_past_the_threshold_plain_lines_name_the_test_its_task_and_what_runs(
    slow: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWRUN_PROGRESS_S", "0.5,0.5")
    result = slow.run()
    result.assert_outcomes(passed=3)
    lines = progress_lines(result)
    assert 1 <= len(lines) <= 3, result.outlines
    first = lines[0]
    assert first.group(1) == "test_suite.py::test_database"
    assert first.group(3) == "database"
    assert 0.5 <= float(first.group(2)) < 1.2
    running = first.group(4)
    assert re.match(r"database \d+\.\ds, redis \d+\.\ds$", running), running
    assert "\r" not in result.stdout.str()  # not a terminal: nothing drawn in place
    assert "s3cret" not in result.stdout.str()
    # pytest's progress line goes on after the progress line, under its file's name.
    assert result.outlines[result.outlines.index(first.group(0)) + 1].startswith("test_suite.py ")


def test_lines_are_spaced_by_the_interval(slow: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWRUN_PROGRESS_S", "0.3,5")
    result = slow.run()
    result.assert_outcomes(passed=3)
    assert len(progress_lines(result)) == 1


def test_nothing_below_the_threshold(slow: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWRUN_PROGRESS_S", "30,3")
    result = slow.run()
    result.assert_outcomes(passed=3)
    assert not progress_lines(result)
    assert " waits " not in result.stdout.str()


def test_nothing_when_the_setup_is_fast(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWRUN_PROGRESS_S", raising=False)
    suite.conftest(SETUP.replace("1.6", "0.01").replace("1.2", "0.01"))
    suite.tests(TESTS)
    result = suite.run("-v")
    result.assert_outcomes(passed=3)
    assert " waits " not in result.stdout.str()


def test_a_dependency_still_to_start_is_named(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWRUN_PROGRESS_S", "0.3,5")
    suite.conftest(
        """
        import time
        from flowrun import task

        @task
        def image():
            time.sleep(1.0)

        @task(deps=[image])
        def container():
            return "up"

        @task
        @__import__("pytest").fixture(scope="session")
        def app():
            return "app"
        """
    )
    suite.tests("def test_container(container, app): pass\n")
    result = suite.run("--flowrun-max-parallel", "1")
    result.assert_outcomes(passed=1)
    lines = progress_lines(result)
    assert lines, result.outlines
    assert lines[0].group(3) in ("image", "container")
    assert lines[0].group(4).startswith("image ")


def test_with_dash_s_the_progress_is_plain_lines_too(
    slow: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWRUN_PROGRESS_S", "0.5,5")
    result = slow.run_subprocess("-s")
    result.assert_outcomes(passed=3)
    assert len(progress_lines(result)) == 1
    assert "\r" not in result.stdout.str()
