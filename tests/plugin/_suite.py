"""``Suite``: a small pytest suite written with ``pytester``, run, and read back.

Generated conftests get a ``log(message)`` helper that appends a timestamped line to
``log.txt``; ``Suite.log()`` reads the messages back in order, ``Suite.times()`` with
their (monotonic) timestamps, and ``Suite.report()`` the ``--flowrun-report`` JSON.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

LOG_HELPER = """\
import pathlib as _pathlib
import time as _time

_LOG = _pathlib.Path(__file__).resolve().parent / "log.txt"


def log(message):
    with _LOG.open("a") as _file:
        _file.write(f"{_time.monotonic():.6f} {message}\\n")

"""

BASE_INI = """\
[pytest]
asyncio_default_fixture_loop_scope = function
"""


class Suite:
    """A pytest suite under construction in ``pytester.path``."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.path = pytester.path

    def conftest(self, source: str, *, where: str = "") -> Path:
        """Write ``conftest.py`` (in subdirectory ``where``), with ``log`` available."""
        directory = self.path / where
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "conftest.py"
        path.write_text(LOG_HELPER + textwrap.dedent(source), encoding="utf-8")
        return path

    def tests(self, source: str, *, name: str = "test_suite.py") -> Path:
        """Write a test module (``name`` may include directories)."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path

    def ini(self, *lines: str) -> None:
        """Add ``lines`` to the ``[pytest]`` section of the suite's ini file."""
        self.pytester.makeini(BASE_INI + "\n".join(lines) + "\n")

    def run(self, *args: str) -> pytest.RunResult:
        """Run the suite in this process."""
        return self.pytester.runpytest(*args)

    def run_subprocess(self, *args: str, timeout: float = 60) -> pytest.RunResult:
        """Run the suite in a fresh interpreter (for what one process cannot show)."""
        return self.pytester.runpytest_subprocess(*args, timeout=timeout)

    def log(self) -> list[str]:
        """The logged messages, in order."""
        return [line.split(" ", 1)[1] for line in self._lines()]

    def times(self) -> dict[str, float]:
        """Each logged message with the time it was logged at."""
        return {m: float(t) for t, m in (line.split(" ", 1) for line in self._lines())}

    def report(self, name: str = "report.json") -> dict[str, Any]:
        """The JSON report written with ``--flowrun-report``."""
        data: dict[str, Any] = json.loads((self.path / name).read_text(encoding="utf-8"))
        return data

    def _lines(self) -> list[str]:
        path = self.path / "log.txt"
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []
