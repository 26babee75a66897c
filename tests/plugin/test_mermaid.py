"""The summary's Mermaid blocks, checked with the real Mermaid library under Node.

``tests/mermaid/check.mjs`` parses and renders every block with Mermaid (in jsdom, no
browser) and prints what the rendered diagrams show, so these tests check both that
Mermaid accepts the text and that it reads it as meant: a bar per task under the right
name, ``crit`` where a task failed, an edge per dependency.

Locally the tests skip when ``node`` or the packages are missing (``npm ci --prefix
tests/mermaid`` installs them); CI sets ``FLOWRUN_REQUIRE_MERMAID=1``, which makes that a
failure instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_flowrun._markdown import summary_markdown
from pytest_flowrun._redact import mask_url_passwords

from . import _reports

CHECKER_DIR = Path(__file__).resolve().parents[1] / "mermaid"
CHECKER = CHECKER_DIR / "check.mjs"
REQUIRE_ENV = "FLOWRUN_REQUIRE_MERMAID"

CheckFn = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def check_mermaid() -> CheckFn:
    """Runs the checker on files: ``check_mermaid(*paths, json=False)``."""
    node = shutil.which("node")
    missing = [
        package
        for package in ("mermaid", "jsdom")
        if not (CHECKER_DIR / "node_modules" / package / "package.json").is_file()
    ]
    reason = None
    if node is None:
        reason = "the Mermaid check needs node on PATH"
    elif missing:
        reason = (
            f"the Mermaid check needs {', '.join(missing)}: run `npm ci --prefix tests/mermaid`"
        )
    if reason is not None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{reason} ({REQUIRE_ENV} is set)", pytrace=False)
        pytest.skip(reason)
    assert node is not None

    def check(*paths: Path, as_json: bool = False) -> subprocess.CompletedProcess[str]:
        args = [node, str(CHECKER), *(["--json"] if as_json else []), *map(str, paths)]
        return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)

    return check


@pytest.fixture(scope="module")
def shown(
    check_mermaid: CheckFn, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[dict[str, Any]]]:
    """What Mermaid shows of each summary of ``_reports.REPORTS``: one run of the checker."""
    folder = tmp_path_factory.mktemp("summaries")
    paths = {}
    for i, (case, build) in enumerate(_reports.REPORTS.items()):
        paths[case] = folder / f"summary-{i}.md"
        paths[case].write_text(summary_markdown(build()), encoding="utf-8")
    done = check_mermaid(*paths.values(), as_json=True)
    assert done.returncode == 0, done.stderr
    by_file = {entry["file"]: entry["diagrams"] for entry in json.loads(done.stdout)}
    return {case: by_file[str(path)] for case, path in paths.items()}


def _status_label(name: str, status: str) -> str:
    shown = mask_url_passwords(name)
    return shown if status == "SUCCESS" else f"{shown} ({status.lower().replace('_', ' ')})"


@pytest.mark.parametrize("case", list(_reports.REPORTS))
def test_mermaid_renders_a_setup_bar_per_task_and_a_teardown_bar_per_teardown(
    shown: dict[str, list[dict[str, Any]]], case: str
) -> None:
    report = _reports.REPORTS[case]()
    gantt = shown[case][0]
    assert gantt["type"] == "gantt"
    setup = [bar for bar in gantt["bars"] if bar["section"] == "Setup"]
    torn = [bar for bar in gantt["bars"] if bar["section"] == "Teardown"]
    tasks = report["tasks"]
    assert [bar["name"] for bar in setup] == [
        _status_label(name, task["status"]) for name, task in tasks.items()
    ]
    assert [bar["crit"] for bar in setup] == [
        task["status"] in ("FAILED", "TIMED_OUT") for task in tasks.values()
    ]
    assert [bar["milestone"] for bar in setup] == [
        task["offset_s"] is None for task in tasks.values()
    ]
    with_teardown = {name: task for name, task in tasks.items() if task["teardown"] is not None}
    assert [bar["name"] for bar in torn] == [
        _status_label(name, task["teardown"]["status"]) for name, task in with_teardown.items()
    ]
    assert [bar["crit"] for bar in torn] == [
        task["teardown"]["status"] in ("FAILED", "TIMED_OUT") for task in with_teardown.values()
    ]
    for bar in gantt["bars"]:
        assert 0 <= bar["start"] <= bar["end"], bar


@pytest.mark.parametrize("case", list(_reports.REPORTS))
def test_mermaid_renders_the_dag_with_a_node_per_task_and_an_edge_per_dependency(
    shown: dict[str, list[dict[str, Any]]], case: str
) -> None:
    report = _reports.REPORTS[case]()
    flowchart = shown[case][1]
    assert flowchart["type"] == "flowchart"
    tasks = report["tasks"]
    assert [node["label"].split("\n")[0] for node in flowchart["nodes"]] == [
        mask_url_passwords(name) for name in tasks
    ]
    assert [node["classes"] for node in flowchart["nodes"]] == [
        [task["status"].lower()] for task in tasks.values()
    ]
    ids = {name: node["id"] for name, node in zip(tasks, flowchart["nodes"], strict=True)}
    assert flowchart["edges"] == [
        [ids[parent], ids[name]] for name, task in tasks.items() for parent in task["deps"]
    ]


def test_odd_names_are_shown_as_they_are_with_passwords_masked(
    shown: dict[str, list[dict[str, Any]]],
) -> None:
    gantt = shown["odd names"][0]
    names = [bar["name"] for bar in gantt["bars"] if bar["section"] == "Setup"]
    assert names[:-1] == list(_reports.ODD_NAMES[:-1])
    assert names[-1] == "https://user:***@host/path (failed)"
    assert "hunter2" not in json.dumps(shown)


def test_a_summary_without_tasks_has_no_mermaid_block() -> None:
    assert "```mermaid" not in summary_markdown(_reports.empty_report())


INVALID = {
    "unfinished edge": "flowchart LR\n    a -->\n",
    "unclosed label": 'flowchart LR\n    n0["a] --> n1\n',
    "reserved node id": "flowchart LR\n    end --> a\n",
    "gantt task with a bad date": "gantt\n    dateFormat x\n    section S\n    a :s0, soon, 10\n",
    "gantt task after an unknown task": (
        "gantt\n    dateFormat x\n    section S\n    a :s0, 0, 10\n    b :s1, after zz, 20\n"
    ),
    "gantt task ending before it starts": (
        "gantt\n    dateFormat x\n    section S\n    a :s0, 50, 10\n"
    ),
    "gantt keyword as a task name": (
        "gantt\n    dateFormat x\n    section S\n    click x :s0, 0, 10\n"
    ),
    "duplicate gantt id": (
        "gantt\n    dateFormat x\n    section S\n    a :s0, 0, 10\n    b :s0, 10, 20\n"
    ),
    "not a diagram": "gnatt\n    a :s0, 0, 10\n",
}


def test_the_checker_rejects_invalid_mermaid(check_mermaid: CheckFn, tmp_path: Path) -> None:
    paths = {}
    for i, (case, text) in enumerate(INVALID.items()):
        paths[case] = tmp_path / f"bad-{i}.mmd"
        paths[case].write_text(text, encoding="utf-8")
    done = check_mermaid(*paths.values())
    assert done.returncode == 1
    rejected = {
        case for case, path in paths.items() if f"{path}:1: invalid mermaid:" in done.stderr
    }
    assert rejected == set(INVALID), done.stderr


def test_the_checker_accepts_valid_mermaid_and_checks_markdown_blocks(
    check_mermaid: CheckFn, tmp_path: Path
) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# notes\n\n```mermaid\nflowchart LR\n    a --> b\n```\n\ntext\n\n"
        "```mermaid\ngantt\n    dateFormat x\n    section S\n    a :s0, 0, 10\n```\n",
        encoding="utf-8",
    )
    done = check_mermaid(page)
    assert (done.returncode, done.stdout.strip()) == (0, "ok: 2 mermaid diagrams in 1 input")
    page.write_text("# notes\n\n```mermaid\nflowchart LR\n    a -->\n```\n", encoding="utf-8")
    done = check_mermaid(page)
    assert done.returncode == 1
    assert f"{page}:4: invalid mermaid: Parse error on line" in done.stderr
