"""``--flowrun-resources`` / ``flowrun_resources``: caps on what setup tasks declare."""

from __future__ import annotations

import pytest

from ._suite import Suite

TWO_CONTAINERS = """
import time
from flowrun import task

@task(resources={"docker": 1})
def postgres():
    log("postgres start")
    time.sleep(0.3)
    log("postgres end")

@task(resources={"docker": 1})
def redis():
    log("redis start")
    time.sleep(0.3)
    log("redis end")

@task
def token():
    log("token start")
    time.sleep(0.3)
    log("token end")
"""

TESTS = """
def test_db(postgres, redis, token): pass
"""


def overlap(times: dict[str, float], a: str, b: str) -> bool:
    return times[f"{a} start"] < times[f"{b} end"] and times[f"{b} start"] < times[f"{a} end"]


def test_the_ini_cap_keeps_two_holders_of_a_resource_apart_and_others_running(
    suite: Suite,
) -> None:
    suite.conftest(TWO_CONTAINERS)
    suite.tests(TESTS)
    suite.ini("flowrun_resources = docker=1")
    result = suite.run("--flowrun-report=report.json")
    result.assert_outcomes(passed=1)
    times = suite.times()
    assert not overlap(times, "postgres", "redis")
    # A task holding nothing is not held back by the cap.
    assert overlap(times, "token", "postgres") or overlap(times, "token", "redis")
    report = suite.report()
    assert report["tasks"]["postgres"]["resources"] == {"docker": 1}


def test_the_command_line_wins_over_the_ini(suite: Suite) -> None:
    suite.conftest(TWO_CONTAINERS)
    suite.tests(TESTS)
    suite.ini("flowrun_resources = docker=1")
    result = suite.run("--flowrun-resources=docker=2")
    result.assert_outcomes(passed=1)
    assert overlap(suite.times(), "postgres", "redis")
    result.stdout.fnmatch_lines(["flowrun: max_parallel=16, timeout=none, resources=docker=2"])


def test_flowrun_dag_shows_the_caps_and_what_each_task_holds(suite: Suite) -> None:
    suite.conftest(TWO_CONTAINERS)
    suite.tests(TESTS)
    result = suite.run("--flowrun-dag", "--flowrun-resources", "docker=2, db=1")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*resources docker=2 db=1*", "*postgres (sync, docker=1)*"])


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("docker", "'docker' is not NAME=N"),
        ("=2", "'=2' is not NAME=N"),
        ("docker=0", "the cap of 'docker' must be a whole number >= 1, got '0'"),
        ("docker=two", "the cap of 'docker' must be a whole number >= 1, got 'two'"),
        ("docker=1 docker=2", "'docker' is capped twice"),
    ],
)
def test_a_bad_cap_is_a_usage_error_naming_the_option(
    suite: Suite, value: str, problem: str
) -> None:
    suite.conftest(TWO_CONTAINERS)
    suite.tests(TESTS)
    result = suite.run(f"--flowrun-resources={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--flowrun-resources={value!r} is invalid: {problem}*"])
    assert not suite.log()


def test_a_task_holding_a_resource_without_a_cap_is_refused_before_anything_runs(
    suite: Suite,
) -> None:
    suite.conftest(TWO_CONTAINERS)
    suite.tests(TESTS)
    suite.ini("flowrun_resources = db=1")
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*task 'postgres' holds resource 'docker', which no cap names; add 'docker=N'*"]
    )
    assert not suite.log()


def test_an_amount_above_its_cap_is_refused_before_anything_runs(suite: Suite) -> None:
    suite.conftest(TWO_CONTAINERS.replace('{"docker": 1})\ndef redis', '{"docker": 3})\ndef redis'))
    suite.tests(TESTS)
    result = suite.run("--flowrun-resources=docker=2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*task 'redis' holds 3 of resource 'docker', above its cap of 2*could never start*"]
    )
    assert not suite.log()
