"""Live progress: what a test waits for, once it has waited a while, and what is running.

A test that needs a task waits for it on the main thread, in the short slices of
``LoopPortal.call``; between slices the portal calls the ``tick`` that
:meth:`Progress.waiting` hands out. Nothing is shown until the test has waited
``THRESHOLD_S``; then one line says which test waits for which task, what is running and
for how long, and which of the tasks it needs have not started::

    flowrun: test_a.py::test_api waits 4.1s for api; running: db 4.1s, token 2.0s; not started: api

Where the line goes depends on the output, decided when it is first drawn:

- **a terminal**: one line below pytest's current one, rewritten in place (``\\r``) at
  every slice and erased when the wait ends, the cursor put back at the end of pytest's
  line (its progress dots go on as if nothing had been drawn). Written with
  ``TerminalReporter.write_raw``, which leaves pytest's idea of its current line alone.
- **not a terminal** (CI logs), and under ``-s`` (a task's prints may land on the
  terminal at any time, and would collide with a line drawn in place): plain lines,
  through ``TerminalReporter.write_line``, at most one every ``LINE_INTERVAL_S``.
- **a pytest-xdist worker**: nothing. A worker's output is not the terminal, and the
  controller does not see a worker's waits; each worker's summary comes at the end.

Output capture is suspended while writing (``global_and_fixture_disabled``), so the line
reaches the terminal and not the test's captured output. ``FLOWRUN_PROGRESS_S`` (two
numbers, ``"threshold,interval"``) overrides the two constants, for tests.

Imports pytest and the standard library; the run's records are read through ``ActiveRun``.
"""

from __future__ import annotations

import contextlib
import enum
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_flowrun._redact import mask_url_passwords

if TYPE_CHECKING:
    from flowrun.scheduler import ActiveRun

#: How long a test waits for its tasks before the progress line appears.
THRESHOLD_S = 2.0
#: Without a terminal, the least time between two progress lines.
LINE_INTERVAL_S = 3.0
#: ``"threshold,interval"`` in seconds, overriding the two constants above.
ENV = "FLOWRUN_PROGRESS_S"

_MOVE_UP = "\x1b[1A"


class _Mode(enum.Enum):
    """How progress is shown; chosen at the first line drawn."""

    UNDECIDED = enum.auto()
    IN_PLACE = enum.auto()
    LINES = enum.auto()
    OFF = enum.auto()


class Progress:
    """The progress display of one pytest session: one wait at a time, on the main thread."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._threshold_s, self._interval_s = _timings()
        self._mode = _Mode.UNDECIDED
        #: The column pytest's line ended at when the in-place line was drawn below it.
        self._column: int | None = None
        self._last_line_at = -float("inf")
        #: The test waiting, and how long it has waited for its tasks so far.
        self._test = ""
        self._waited_s = 0.0

    @contextlib.contextmanager
    def waiting(self, test: str, task: str, run: ActiveRun) -> Iterator[Callable[[float], None]]:
        """While the ``with`` block waits for ``task`` on behalf of ``test``: yields the
        ``tick(waited_s)`` to call between wait slices; the line drawn, if any, is erased
        when the block ends."""

        # pytest's own "which test is running" (its documented variable), with the phase cut.
        current = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
        test = current or test
        # A test waits for each of its task fixtures in turn: the threshold is for them all.
        if test != self._test:
            self._test, self._waited_s = test, 0.0
        before = self._waited_s

        def tick(waited_s: float) -> None:
            self._waited_s = before + waited_s
            if self._waited_s >= self._threshold_s and self._mode is not _Mode.OFF:
                self._show(status_line(test, task, run, self._waited_s))

        try:
            yield tick
        finally:
            self._erase()

    def _show(self, text: str) -> None:
        reporter = self._reporter()
        if reporter is None:
            return
        if self._mode is _Mode.LINES:
            now = time.monotonic()
            if now - self._last_line_at < self._interval_s:
                return
            self._last_line_at = now
            path = reporter.currentfspath
            with self._uncaptured():
                reporter.write_line(text)
                if isinstance(path, os.PathLike):
                    # pytest writes the next test's letter without its file's name in
                    # front (its non-verbose line): put the name back on a line of its own.
                    reporter.currentfspath = path
                    reporter.write(os.path.relpath(path, reporter.startpath) + " ")
                reporter.flush()
            return
        width = self._config.get_terminal_writer().fullwidth - 1
        text = text if len(text) <= width else text[: width - 1] + "…"
        with self._uncaptured():
            if self._column is None:
                # Below pytest's line, which keeps its progress dots and its width.
                self._column = self._config.get_terminal_writer().width_of_current_line
                reporter.write_raw("\n" if self._column > 0 else "")
            reporter.write_raw("\r" + text.ljust(width), flush=True)

    def _erase(self) -> None:
        column, self._column = self._column, None
        reporter = self._reporter()
        if column is None or reporter is None:
            return
        width = self._config.get_terminal_writer().fullwidth - 1
        back = f"{_MOVE_UP}\x1b[{column + 1}G" if column > 0 else ""
        with self._uncaptured():
            reporter.write_raw("\r" + " " * width + "\r" + back, flush=True)

    def _reporter(self) -> pytest.TerminalReporter | None:
        """The terminal reporter, having chosen the mode on first use; None when off."""
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")
        if self._mode is _Mode.UNDECIDED:
            self._mode = self._choose(reporter)
        return reporter if self._mode is not _Mode.OFF else None

    def _choose(self, reporter: pytest.TerminalReporter | None) -> _Mode:
        config = self._config
        if reporter is None or hasattr(config, "workerinput"):
            return _Mode.OFF
        writer = config.get_terminal_writer()
        if (
            not reporter.isatty()
            or config.getoption("capture", None) == "no"
            or os.environ.get("TERM") == "dumb"
            or writer.width_of_current_line < 0  # a control character: no known column
        ):
            return _Mode.LINES
        return _Mode.IN_PLACE

    def _uncaptured(self) -> contextlib.AbstractContextManager[None]:
        capman = self._config.pluginmanager.getplugin("capturemanager")
        if capman is None:
            return contextlib.nullcontext()
        manager: contextlib.AbstractContextManager[None] = capman.global_and_fixture_disabled()
        return manager


def status_line(test: str, task: str, run: ActiveRun, waited_s: float) -> str:
    """``flowrun: <test> waits 4.1s for <task>; running: a 4.1s, b 2.0s; not started: c``."""
    from flowrun.state import TaskStatus

    now = time.time()
    needed = run.dag.ancestors([task])
    running: list[str] = []
    waiting: list[str] = []
    for name in run.dag.index:
        record = run.record(name)
        if record.status is TaskStatus.RUNNING and record.started_at is not None:
            running.append(f"{name} {now - record.started_at:.1f}s")
        elif record.status is TaskStatus.PENDING and name in needed:
            waiting.append(name)
    parts = [f"flowrun: {test} waits {waited_s:.1f}s for {task}"]
    parts.append("running: " + (", ".join(running) if running else "nothing"))
    if waiting:
        parts.append("not started: " + ", ".join(waiting))
    return mask_url_passwords("; ".join(parts))


def _timings() -> tuple[float, float]:
    """``(threshold, interval)``: the constants, or ``FLOWRUN_PROGRESS_S``'s two numbers."""
    raw = os.environ.get(ENV, "")
    try:
        threshold, interval = (float(part) for part in raw.split(","))
    except ValueError:
        return THRESHOLD_S, LINE_INTERVAL_S
    return threshold, interval
