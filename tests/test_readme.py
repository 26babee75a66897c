"""Every python block of the README runs, and prints what the README says it prints."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```\n", re.M | re.S)
#: Blocks importing these need an optional extra (``flowrun[dask]``, also in ``dev``).
_OPTIONAL = re.compile(r"^(?:from|import) (distributed)\b", re.M)
_PRINT_COMMENT = re.compile(r"^\s*print\(.*\)\s+#\s*(.+)$", re.M)


_FILE_NAME = re.compile(r"\A# ((?:conftest|test_\w+)\.py)\n")


def _python_blocks() -> list[tuple[str, str, str | None]]:
    """(id, code, expected stdout) for each python script block; a text block right after
    it, in the same section, is its exact output. Blocks that start with a file name
    comment are files of a test suite, run by ``test_readme_plugin_suite``."""
    text = README.read_text(encoding="utf-8")
    blocks = list(_BLOCK.finditer(text))
    found = []
    for i, match in enumerate(blocks):
        if match.group(1) != "python" or _FILE_NAME.match(match.group(2)):
            continue
        expected = None
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        if following is not None and following.group(1) == "text":
            between = text[match.end() : following.start()]
            same_section = re.search(r"^#", between, re.M) is None
            if same_section and (not between.strip() or between.strip().endswith(":")):
                expected = following.group(2)
        line = text.count("\n", 0, match.start()) + 1
        found.append((f"README.md:{line}", match.group(2), expected))
    return found


BLOCKS = _python_blocks()


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize(
    ("code", "expected"), [(c, e) for _, c, e in BLOCKS], ids=[b[0] for b in BLOCKS]
)
def test_readme_block_runs_and_prints_what_it_says(
    code: str, expected: str | None, tmp_path: Path
) -> None:
    for module in _OPTIONAL.findall(code):  # an extra's block, without that extra: skip
        pytest.importorskip(module)
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    if expected is not None:
        assert done.stdout == expected
    for promised in _PRINT_COMMENT.findall(code):
        assert promised.strip() in done.stdout


def _suite_files() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    files = {}
    for match in _BLOCK.finditer(text):
        name = _FILE_NAME.match(match.group(2))
        if match.group(1) == "python" and name:
            files[name.group(1)] = match.group(2)
    return files


def test_readme_plugin_suite_passes_with_its_setup_run_as_a_dag(pytester: pytest.Pytester) -> None:
    files = _suite_files()
    assert {"conftest.py", "test_shop.py"} <= set(files)
    for name, code in files.items():
        pytester.makepyfile(**{name.removesuffix(".py"): code})
    result = pytester.runpytest_subprocess("-p", "flowrun", "--flowrun-dag")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["flowrun: 4 tasks run, 0 failed, 0 skipped; setup *"])


def test_readme_plugin_suite_selecting_unit_tests_runs_no_setup(pytester: pytest.Pytester) -> None:
    for name, code in _suite_files().items():
        pytester.makepyfile(**{name.removesuffix(".py"): code})
    result = pytester.runpytest_subprocess("-p", "flowrun", "-k", "unit")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.no_fnmatch_line("flowrun: * tasks run*")


def _first_commands() -> list[str]:
    """The command lines of the README's first bash block, its comments left out."""
    text = README.read_text(encoding="utf-8")
    block = next(m.group(2) for m in _BLOCK.finditer(text) if m.group(1) == "bash")
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_ci_runs_the_readmes_first_command_exactly_as_written() -> None:
    first = _first_commands()[0]
    assert "pytest examples " in first
    assert first in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_extras_the_readmes_commands_install_exist() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        extras = tomllib.load(file)["project"]["optional-dependencies"]
    named = [m for line in _first_commands() for m in re.findall(r"'\.\[(\w+)\]'", line)]
    assert named
    assert set(named) <= set(extras)
