"""The CI summary's Markdown: its sections, its table, the gantt chart and the DAG.

The reports are built by hand (``_reports``) so that every figure is fixed; Mermaid itself
reads the same summaries in ``test_mermaid.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_flowrun._markdown import append_markdown, summary_markdown
from pytest_flowrun._mermaid import flowchart_lines, gantt_lines
from pytest_flowrun._terminal import summary_line

from . import _reports
from ._reports import entry, report

GANTT_HEAD = ["gantt", "    dateFormat x"]


def mermaid_blocks(markdown: str) -> list[list[str]]:
    """The lines of each ```mermaid block of ``markdown``."""
    return [
        block.splitlines()
        for block in re.findall(r"^```mermaid\n(.*?)^```$", markdown, re.M | re.S)
    ]


def headings(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("#")]


# -- sections -------------------------------------------------------------------------------


def test_a_summary_opens_with_the_totals_line_of_the_terminal() -> None:
    failed = _reports.failure_report()
    lines = summary_markdown(failed).splitlines()
    assert lines[:3] == ["## flowrun", "", summary_line(failed)]


def test_a_summary_has_the_table_a_timeline_the_dag_and_the_failures_in_that_order() -> None:
    markdown = summary_markdown(_reports.failure_report())
    assert headings(markdown) == ["## flowrun", "### Timeline", "### DAG", "### Failures"]
    assert markdown.index("| task | status |") < markdown.index("### Timeline")
    blocks = mermaid_blocks(markdown)
    assert [block[0] for block in blocks] == ["gantt", "flowchart LR"]
    assert markdown.endswith("\n")


def test_a_summary_without_failures_has_no_failures_section() -> None:
    assert headings(summary_markdown(_reports.success_report())) == [
        "## flowrun",
        "### Timeline",
        "### DAG",
    ]


def test_the_title_names_the_summary() -> None:
    markdown = summary_markdown(_reports.success_report(), title="flowrun (gw1)")
    assert markdown.startswith("## flowrun (gw1)\n")


def test_a_run_without_tasks_has_the_totals_line_and_nothing_else() -> None:
    assert summary_markdown(_reports.empty_report()) == (
        "## flowrun\n"
        "\n"
        "flowrun: 0 tasks run, 0 failed, 0 skipped; setup 0.00s, serial 0.00s\n"
        "\n"
        "No setup task ran.\n"
    )


def test_the_critical_path_follows_the_table() -> None:
    markdown = summary_markdown(_reports.success_report())
    assert "\nCritical path: database → migrations → api (2.00s)\n" in markdown


# -- the table ------------------------------------------------------------------------------


def test_the_table_has_a_row_per_task_with_its_status_word_times_teardown_and_note() -> None:
    lines = summary_markdown(_reports.failure_report()).splitlines()
    start = lines.index("| task | status | start | duration | attempts | teardown | note |")
    assert lines[start : start + 7] == [
        "| task | status | start | duration | attempts | teardown | note |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
        "| database | SUCCESS | 0.00s | 0.50s | 1 | SUCCESS 0.10s |  |",
        "| migrations | FAILED | 0.50s | 0.20s | 1 | - | RuntimeError: cannot connect to "
        "postgres://app:\\*\\*\\*@db:5432/app |",
        "| seed | SKIPPED | - | - | 0 | - | needs 'migrations' |",
        "| mail | SUCCESS | 0.00s | 0.30s | 1 | - |  |",
        "",
    ]


def test_a_failed_teardown_is_in_its_row() -> None:
    lines = summary_markdown(_reports.teardown_failure_report()).splitlines()
    assert (
        "| database | SUCCESS | 0.00s | 0.40s | 1 | FAILED 0.30s | teardown: OSError: cannot drop |"
        in lines
    )
    assert "| broker | SUCCESS | 0.00s | 0.20s | 1 | CANCELLED 0.00s |  |" in lines


def test_table_cells_escape_markdown_and_keep_to_one_line() -> None:
    odd = report(
        {
            "a|b <b>x</b> & `c` *d* _e_ [f](g)": entry(
                "FAILED",
                offset_s=0.0,
                duration_s=1.0,
                error=_reports.error("ValueError", "line one\nline | two"),
            )
        }
    )
    row = next(line for line in summary_markdown(odd).splitlines() if line.startswith("| a"))
    assert row == (
        r"| a\|b \<b\>x\</b\> \& \`c\` \*d\* \_e\_ \[f\](g) | FAILED | 0.00s | 1.00s | 1 | - "
        r"| ValueError: line one line \| two |"
    )


def test_long_notes_are_cut() -> None:
    long = report(
        {
            "t": entry(
                "FAILED",
                offset_s=0.0,
                duration_s=1.0,
                error=_reports.error("ValueError", "x" * 500),
            )
        }
    )
    row = next(line for line in summary_markdown(long).splitlines() if line.startswith("| t |"))
    note = row.split(" | ")[-1].removesuffix(" |")
    assert len(note) == 120
    assert note.endswith("…")


# -- the gantt chart ------------------------------------------------------------------------


def test_setup_bars_run_from_each_task_start_for_its_duration_in_milliseconds() -> None:
    assert gantt_lines(_reports.success_report()) == [
        *GANTT_HEAD,
        "    axisFormat %Ss",
        "    tickInterval 1second",
        "    todayMarker off",
        "    section Setup",
        "    database :s0, 0, 800",
        "    token :s1, 0, 250",
        "    migrations :s2, 800, 1500",
        "    api :s3, 1500, 2000",
        "    section Teardown",
        "    database :d0, 5700, 6000",
        "    api :d3, 5500, 5700",
    ]


def test_failed_and_timed_out_bars_are_crit_and_named_with_their_status() -> None:
    setup = gantt_lines(_reports.failure_report())
    assert "    migrations (failed) :crit, s1, 500, 700" in setup
    timed_out = gantt_lines(_reports.timeout_report())
    assert "    queue (timed out) :crit, s0, 0, 2000" in timed_out


def test_a_task_that_never_started_is_a_milestone_where_the_failure_that_skipped_it_ended() -> None:
    assert "    seed (skipped) :milestone, s2, 700, 700" in gantt_lines(_reports.failure_report())


def test_a_task_cancelled_before_it_started_is_a_milestone_at_the_end_of_the_setup() -> None:
    lines = gantt_lines(_reports.cancelled_report())
    assert "    slow (cancelled) :s0, 0, 1200" in lines
    assert "    after_slow (cancelled) :milestone, s1, 1200, 1200" in lines


def test_failed_and_timed_out_teardowns_are_crit() -> None:
    lines = gantt_lines(_reports.teardown_failure_report())
    teardown_section = lines[lines.index("    section Teardown") + 1 :]
    assert teardown_section == [
        "    database (failed) :crit, d0, 3700, 4000",
        "    cache (timed out) :crit, d1, 2700, 3700",
        "    broker (cancelled) :d2, 2700, 2701",
    ]


def test_teardowns_are_estimated_in_reverse_dependency_order_ending_when_the_run_ended() -> None:
    # api depends on migrations, which depends on database: api is torn down first, and
    # database once api's teardown ended (migrations has nothing to undo).
    lines = gantt_lines(_reports.success_report())
    assert lines[-2:] == ["    database :d0, 5700, 6000", "    api :d3, 5500, 5700"]
    assert "Teardown start times are estimated" in summary_markdown(_reports.success_report())


def test_teardown_start_times_from_the_report_are_used_as_they_are() -> None:
    lines = gantt_lines(_reports.long_report())
    assert lines[-1] == "    cluster :d0, 400000, 420000"
    assert "estimated" not in summary_markdown(_reports.long_report())


def test_a_run_without_teardowns_has_no_teardown_section() -> None:
    assert "    section Teardown" not in gantt_lines(_reports.timeout_report())


@pytest.mark.parametrize(
    ("build", "axis", "ticks"),
    [
        (_reports.tiny_report, "%S.%L", "100millisecond"),
        (_reports.failure_report, "%S.%L", "500millisecond"),
        (_reports.success_report, "%Ss", "1second"),
        (_reports.long_report, "%M:%S", "1minute"),
    ],
)
def test_the_axis_counts_from_the_run_start_in_steps_that_fit_the_run(
    build: Callable[[], dict[str, Any]], axis: str, ticks: str
) -> None:
    lines = gantt_lines(build())
    assert lines[2:5] == [
        f"    axisFormat {axis}",
        f"    tickInterval {ticks}",
        "    todayMarker off",
    ]


def test_a_bar_shorter_than_a_millisecond_still_shows() -> None:
    lines = gantt_lines(_reports.tiny_report())
    assert lines[-2:] == ["    a :s0, 0, 1", "    b :s1, 0, 1"]


def test_gantt_names_cannot_end_the_name_or_start_a_statement() -> None:
    names = ("migrations: v2", "title", "section x", "#quot;", "%% c", "2024-01-01 x", "ünï")
    tasks = {name: entry(offset_s=0.0, duration_s=1.0) for name in names}
    bars = gantt_lines(report(tasks))[6:]
    assert bars == [
        "    migrations#58; v2 :s0, 0, 1000",
        "    #116;itle :s1, 0, 1000",
        "    #115;ection x :s2, 0, 1000",
        "    #35;quot; :s3, 0, 1000",
        "    #37;% c :s4, 0, 1000",
        "    #50;024-01-01 x :s5, 0, 1000",
        "    ünï :s6, 0, 1000",
    ]


# -- the DAG --------------------------------------------------------------------------------


def test_the_dag_has_a_node_per_task_an_edge_per_dependency_and_a_class_per_status() -> None:
    assert flowchart_lines(_reports.failure_report()) == [
        "flowchart LR",
        '    n0["database"]',
        '    n1["migrations<br/>FAILED"]',
        '    n2["seed<br/>SKIPPED"]',
        '    n3["mail"]',
        "    n0 --> n1",
        "    n1 --> n2",
        "    classDef success fill:#d3f4d1,stroke:#2d7d2a,color:#111",
        "    classDef failed fill:#f9d0d0,stroke:#b42318,stroke-width:2px,color:#111",
        "    classDef skipped fill:#eeeeee,stroke:#888888,stroke-dasharray:4 3,color:#555",
        "    class n0,n3 success",
        "    class n1 failed",
        "    class n2 skipped",
        "    linkStyle 0 stroke-width:3px",
    ]


def test_the_critical_path_edges_are_thick() -> None:
    lines = flowchart_lines(_reports.success_report())
    edges = [line.strip() for line in lines if "-->" in line]
    assert edges == ["n0 --> n2", "n2 --> n3", "n1 --> n3"]
    assert lines[-1] == "    linkStyle 0,1 stroke-width:3px"


def test_node_ids_are_generated_and_labels_escaped() -> None:
    tasks = {
        "end": entry(offset_s=0.0, duration_s=1.0),
        'say "hi" <b>#1</b> & `x`': entry(deps=("end",), offset_s=1.0, duration_s=1.0),
    }
    assert flowchart_lines(report(tasks))[1:4] == [
        '    n0["end"]',
        '    n1["say #34;hi#34; #60;b#62;#35;1#60;/b#62; #38; #96;x#96;"]',
        "    n0 --> n1",
    ]


def test_a_dependency_outside_the_report_draws_no_edge() -> None:
    tasks = {"child": entry(deps=("gone",), offset_s=0.0, duration_s=1.0)}
    assert not [line for line in flowchart_lines(report(tasks)) if "-->" in line]


# -- secrets --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(_reports.REPORTS))
def test_no_result_and_no_url_password_is_shown(case: str) -> None:
    markdown = summary_markdown(_reports.REPORTS[case]())
    assert "hunter2" not in markdown
    assert "secret-token" not in markdown


def test_a_failure_folds_its_traceback_with_passwords_masked() -> None:
    markdown = summary_markdown(_reports.failure_report())
    failures = markdown[markdown.index("### Failures") :]
    assert failures.splitlines() == [
        "### Failures",
        "",
        "<details>",
        "<summary>task 'migrations' FAILED: RuntimeError: cannot connect to "
        "postgres://app:***@db:5432/app</summary>",
        "",
        "```text",
        "Traceback (most recent call last):",
        '  File "/suite/conftest.py", line 7, in migrations',
        "    raise RuntimeError(...)",
        "RuntimeError: cannot connect to postgres://app:***@db:5432/app",
        "```",
        "",
        "</details>",
    ]


def test_timeouts_and_teardown_failures_are_listed_in_the_failures() -> None:
    markdown = summary_markdown(_reports.teardown_failure_report())
    failures = markdown[markdown.index("### Failures") :]
    assert "<summary>task 'database' teardown FAILED: OSError: cannot drop</summary>" in failures
    assert (
        "- task 'cache' teardown TIMED\\_OUT: TaskTimeoutError: teardown of 'cache' timed out"
        in failures
    )
    assert "- task 'broker' teardown CANCELLED" in failures
    timeouts = summary_markdown(_reports.timeout_report())
    assert "- task 'queue' TIMED\\_OUT: TaskTimeoutError: task 'queue' timed out after 1s" in (
        timeouts
    )


def test_a_traceback_holding_backticks_gets_a_longer_fence() -> None:
    trace = _reports.traceback("bad ```fence```")
    failed = report(
        {
            "t": entry(
                "FAILED",
                offset_s=0.0,
                duration_s=1.0,
                error=_reports.error("RuntimeError", "bad", trace),
            )
        }
    )
    assert "\n````text\n" in summary_markdown(failed)


# -- appending to a file --------------------------------------------------------------------


def test_append_markdown_keeps_what_the_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "step-summary.md"
    path.write_text("# Build\n\nall green", encoding="utf-8")
    append_markdown(path, "## flowrun\n")
    append_markdown(path, "## flowrun (gw1)\n")
    assert path.read_text(encoding="utf-8") == (
        "# Build\n\nall green\n\n## flowrun\n\n## flowrun (gw1)\n"
    )


def test_append_markdown_creates_the_file_and_its_folders(tmp_path: Path) -> None:
    path = tmp_path / "ci" / "out" / "summary.md"
    append_markdown(path, "## flowrun\n")
    assert path.read_text(encoding="utf-8") == "## flowrun\n"
