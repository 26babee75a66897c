"""The CI summary (``--flowrun-summary``, ``$GITHUB_STEP_SUMMARY``) and no secrets in artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from . import test_mermaid
from ._suite import Suite

# The Node checker of test_mermaid: skips without node, fails in CI (FLOWRUN_REQUIRE_MERMAID).
check_mermaid = test_mermaid.check_mermaid

DSN = "postgres://app:s3cret@db:5432/app"

SETUP = f"""
    import time
    from flowrun import task

    @task
    def database():
        time.sleep(0.1)
        yield {DSN!r}
        time.sleep(0.05)

    @task(deps=[database])
    def migrations(database):
        return 42

    @task(deps=[database])
    def broken(database):
        raise RuntimeError(f"cannot connect to {{database}}")
"""

TESTS = """
    def test_migrated(migrations):
        assert migrations == 42

    def test_broken(broken):
        pass
"""


@pytest.fixture
def shop(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> Suite:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    suite.conftest(SETUP)
    suite.tests(TESTS)
    return suite


def test_the_summary_has_the_totals_the_table_and_both_charts(
    shop: Suite, check_mermaid: test_mermaid.CheckFn
) -> None:
    result = shop.run("--flowrun-summary", "out/summary.md")
    result.assert_outcomes(passed=1, errors=1)
    text = (shop.path / "out" / "summary.md").read_text(encoding="utf-8")
    assert text.startswith("## flowrun\n")
    assert "flowrun: 3 tasks run, 1 failed, 0 skipped; setup " in text
    assert "| database | SUCCESS |" in text
    assert "| broken | FAILED |" in text
    assert text.count("```mermaid") == 2
    assert "gantt" in text
    assert "flowchart" in text
    assert ":crit," in text  # the failed task's bar
    # The report now has each teardown's start: nothing is estimated.
    assert "estimated" not in text
    done = check_mermaid(shop.path / "out" / "summary.md", as_json=True)
    assert done.returncode == 0, done.stderr
    gantt, flowchart = json.loads(done.stdout)[0]["diagrams"]
    names = [bar["name"] for bar in gantt["bars"]]
    assert names == ["database", "migrations", "broken (failed)", "database"]
    assert len(flowchart["edges"]) == 2


def test_the_ini_twin_names_the_file_from_the_ini_directory(shop: Suite) -> None:
    shop.ini("flowrun_summary = ci/summary.md")
    shop.run().assert_outcomes(passed=1, errors=1)
    assert (shop.path / "ci" / "summary.md").read_text(encoding="utf-8").startswith("## flowrun")


def test_github_step_summary_is_appended_to_and_kept(
    shop: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    github = shop.path / "step_summary.md"
    github.write_text("# Earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(github))
    shop.run("--flowrun-summary", "own.md").assert_outcomes(passed=1, errors=1)
    text = github.read_text(encoding="utf-8")
    assert text.startswith("# Earlier step\n")
    assert "## flowrun" in text
    assert "```mermaid" in text
    own = (shop.path / "own.md").read_text(encoding="utf-8")
    assert own == text[text.index("## flowrun") :]


def test_the_ini_turns_github_step_summary_off(
    shop: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    github = shop.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(github))
    shop.ini("flowrun_github_summary = false")
    shop.run().assert_outcomes(passed=1, errors=1)
    assert not github.exists()


def test_an_unwritable_summary_is_a_usage_error_naming_the_option(shop: Suite) -> None:
    (shop.path / "taken").write_text("a file, not a directory", encoding="utf-8")
    result = shop.run("--flowrun-summary", "taken/summary.md")
    result.stderr.fnmatch_lines(["*flowrun: cannot write the summary to *(--flowrun-summary*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_password_in_a_url_is_masked_and_results_are_left_out(shop: Suite) -> None:
    result = shop.run(
        "--flowrun-summary", "summary.md", "--flowrun-report", "report.json", "--flowrun-dag"
    )
    result.assert_outcomes(passed=1, errors=1)
    report = shop.report()
    summary = (shop.path / "summary.md").read_text(encoding="utf-8")
    terminal = result.stdout.str()
    for artifact in (json.dumps(report), summary, terminal):
        assert "s3cret" not in artifact
    assert "postgres://app:***@db:5432/app" in report["tasks"]["broken"]["error"]["message"]
    assert "postgres://app:***@db:5432/app" in report["tasks"]["broken"]["error"]["traceback"]
    assert "postgres://app:\\*\\*\\*@db:5432/app" in summary  # Markdown-escaped
    assert "cannot connect to postgres://app:***@db:5432/app" in terminal
    assert all("result" not in task for task in report["tasks"].values())


def test_flowrun_report_results_puts_results_back_in_the_json_report_only(shop: Suite) -> None:
    shop.ini("flowrun_report_results = true")
    result = shop.run("--flowrun-summary", "summary.md", "--flowrun-report", "report.json")
    result.assert_outcomes(passed=1, errors=1)
    tasks = shop.report()["tasks"]
    assert tasks["migrations"]["result"] == 42
    assert tasks["database"]["result"] == "postgres://app:***@db:5432/app"
    assert "42" not in Path(shop.path / "summary.md").read_text(encoding="utf-8").split("###")[0]


def test_under_xdist_the_controller_writes_a_section_per_worker(shop: Suite) -> None:
    pytest.importorskip("xdist")
    result = shop.run_subprocess("-n", "2", "-p", "xdist", "--flowrun-summary", "summary.md")
    result.assert_outcomes(passed=1, errors=1)
    text = (shop.path / "summary.md").read_text(encoding="utf-8")
    assert sorted(line for line in text.splitlines() if line.startswith("## ")) == [
        "## flowrun (gw0)",
        "## flowrun (gw1)",
    ]
