"""The user's spec README runs against flowrun: every python block, through a real engine.

The spec lives beside the project (``../shared/spec/flowrun-README.md``). The quick start
runs as a script in a fresh interpreter and its output is checked line by line. The
authoring blocks leave some names to the reader (``summarize``, ``call_api``, an s3
client): they run in one namespace with stubs for those, and their tasks are then run by
an engine, as the README's text says they would be.
"""

from __future__ import annotations

import re
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flowrun.context import RunContext
from flowrun.engine import build_default_engine
from flowrun.task import TaskRegistry

SPEC = Path(__file__).parents[1].parent / "shared" / "spec" / "flowrun-README.md"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)

#: How each python block of the spec is recognised; every block must be one of these.
KINDS = {
    "quick start": "asyncio.run(main())",
    "context injection": "def pull_report(",
    "upstream results": "def aggregate(",
    "dynamic registration": "def register_fetchers(",
}


@dataclass(frozen=True)
class Block:
    kind: str
    line: int
    code: str


@pytest.fixture(scope="module")
def blocks() -> dict[str, Block]:
    """The spec's python blocks by kind; skips when the spec is not beside the project."""
    if not SPEC.is_file():
        pytest.skip(
            f"the spec README is not beside the project (looked for {SPEC.name} in ../shared/spec)"
        )
    text = SPEC.read_text(encoding="utf-8")
    found: dict[str, Block] = {}
    for match in _BLOCK.finditer(text):
        if match.group(1) != "python":
            continue
        code = match.group(2)
        kinds = [kind for kind, marker in KINDS.items() if marker in code]
        line = text.count("\n", 0, match.start()) + 1
        assert len(kinds) == 1, f"spec README line {line}: a python block this test does not know"
        assert kinds[0] not in found, f"spec README line {line}: a second {kinds[0]} block"
        found[kinds[0]] = Block(kinds[0], line, code)
    assert set(found) == set(KINDS)
    return found


def test_quick_start_runs_as_a_script_and_prints_what_it_promises(
    blocks: dict[str, Block], tmp_path: Path
) -> None:
    script = tmp_path / "quickstart.py"
    script.write_text(blocks["quick start"].code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    dag_view, run_output = lines[:-3], lines[-3:]
    # engine.display_dag("user_onboarding") first: the three tasks and the edges.
    assert dag_view[0].startswith("dag 'user_onboarding': 3 tasks")
    view = "\n".join(dag_view)
    for name in ["fetch_user", "fetch_settings", "email_user"]:
        assert name in view
    assert "email_user (sync) <- fetch_user, fetch_settings" in view
    # Then the run: the context read through, upstream results, the status as a word.
    assert run_output == [
        "fetching via https://api.example",
        "Emailing Ada with locale en_GB",
        "SUCCESS",
    ]


class StubS3:
    """Stands in for the README's ``s3_client``."""

    def __init__(self, report: object = None, error: Exception | None = None) -> None:
        self.report = report if report is not None else {"rows": 3}
        self.error = error
        self.pulls = 0

    def pull(self) -> object:
        self.pulls += 1
        if self.error is not None:
            raise self.error
        return self.report


def run_blocks(
    blocks: dict[str, Block],
    kinds: list[str],
    stubs: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """Run the blocks of ``kinds`` in order as one module whose globals start as ``stubs``.

    The module is registered in ``sys.modules`` for the test, as an imported module of
    the user's would be, and compiled without this file's ``from __future__`` import.
    """
    module = types.ModuleType(f"spec_readme_{kinds[0].replace(' ', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    module.__dict__.update(stubs)
    for kind in kinds:
        block = blocks[kind]
        code = compile(block.code, f"{SPEC.name}:{block.line}", "exec", dont_inherit=True)
        exec(code, module.__dict__)
    return module.__dict__


def authoring_namespace(
    blocks: dict[str, Block], summaries: list[object], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The context-injection and upstream blocks, with a ``summarize`` stub."""

    def summarize(report: object) -> str:
        summaries.append(report)
        return f"summary of {report}"

    return run_blocks(
        blocks, ["context injection", "upstream results"], {"summarize": summarize}, monkeypatch
    )


@pytest.mark.asyncio
async def test_context_injection_and_upstream_blocks_run_through_an_engine(
    blocks: dict[str, Block],
    clean_default_registry: TaskRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    summaries: list[object] = []
    ns = authoring_namespace(blocks, summaries, monkeypatch)
    # Bare @task: both tasks went to the default registry, the child after its parent.
    assert clean_default_registry.names() == ["pull_report", "aggregate"]
    assert clean_default_registry.get("pull_report").context_arg == "context"
    assert clean_default_registry.get("aggregate").upstream_arg == "upstream"

    s3 = StubS3(report={"rows": 3})
    engine = build_default_engine()
    run_id = await engine.run_once("reports", context=RunContext(ns["Deps"](s3_client=s3)))
    report = engine.get_run_report(run_id)
    assert report["status"] == "SUCCESS", report
    assert report["tasks"]["pull_report"]["result"] == {"rows": 3}
    assert report["tasks"]["aggregate"]["result"] == "summary of {'rows': 3}"
    assert summaries == [{"rows": 3}]
    assert s3.pulls == 1


@pytest.mark.asyncio
async def test_a_failed_parent_short_circuits_the_upstream_child(
    blocks: dict[str, Block],
    clean_default_registry: TaskRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    summaries: list[object] = []
    ns = authoring_namespace(blocks, summaries, monkeypatch)
    s3 = StubS3(error=ConnectionError("bucket unreachable"))
    engine = build_default_engine()
    run_id = await engine.run_once("reports", context=RunContext(ns["Deps"](s3_client=s3)))
    tasks = engine.get_run_report(run_id)["tasks"]
    assert tasks["pull_report"]["status"] == "FAILED"
    assert tasks["pull_report"]["error"]["message"] == "bucket unreachable"
    assert tasks["aggregate"]["status"] == "SKIPPED"
    assert tasks["aggregate"]["skipped_because"] == "pull_report"
    assert summaries == []  # the child never launched


@pytest.mark.asyncio
async def test_dynamic_registration_block_runs_through_an_engine(
    blocks: dict[str, Block],
    clean_default_registry: TaskRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def call_api(value: str) -> str:
        calls.append(value)
        return f"payload for {value}"

    namespace = run_blocks(blocks, ["dynamic registration"], {"call_api": call_api}, monkeypatch)
    registry = namespace["registry"]
    assert isinstance(registry, TaskRegistry)
    assert registry.names() == ["fetch_alpha", "fetch_beta", "fetch_gamma"]
    assert len(clean_default_registry) == 0  # registry=... kept them out of the default one

    engine = build_default_engine(registry=registry)
    run_id = await engine.run_once("fetchers")
    report = engine.get_run_report(run_id)
    assert report["status"] == "SUCCESS", report
    assert {name: t["result"] for name, t in report["tasks"].items()} == {
        "fetch_alpha": "payload for alpha",
        "fetch_beta": "payload for beta",
        "fetch_gamma": "payload for gamma",
    }
    assert sorted(calls) == ["alpha", "beta", "gamma"]  # each task kept its own value
