"""What a task's outcome means for the tests waiting on it, in words and in exceptions.

Which of pytest's outcomes raised in a task are skips and which are interrupts
(``SKIP_EXCEPTIONS``, ``INTERRUPT_EXCEPTIONS``). A failed or timed-out task becomes the one
line that errors each test needing it (``failure_text``), a skipped one the reason those
tests are skipped (``skip_text``), both through ``not_served``; a
task that raised ``pytest.exit`` or ``KeyboardInterrupt`` stops the session as pytest
expects on the main thread (``raise_on_main``, ``exit_status``). Every text goes through
``mask_url_passwords``: it ends up in CI logs.

Imports the plugin's ``_redact``; the runtime inside functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_flowrun._redact import mask_url_passwords

if TYPE_CHECKING:
    from flowrun.scheduler import ActiveRun, TaskFailedError

#: What a task raises to be skipped, and what interrupts the session from a task.
#: ``XFailed`` subclasses ``Failed``: listed here, it is a skip and not a failure.
SKIP_EXCEPTIONS: tuple[type[BaseException], ...] = (pytest.skip.Exception, pytest.xfail.Exception)
INTERRUPT_EXCEPTIONS: tuple[type[BaseException], ...] = (KeyboardInterrupt, pytest.exit.Exception)


def raise_on_main(interrupt: BaseException, run: ActiveRun) -> None:
    """Raise ``interrupt``, which stopped ``run``, as pytest expects it on the main thread."""
    name = _task_that_raised(interrupt, run)
    if isinstance(interrupt, pytest.exit.Exception):
        pytest.exit(f"flowrun: task {name!r}: {interrupt.msg}", returncode=interrupt.returncode)
    raise KeyboardInterrupt(f"flowrun: task {name!r} raised {type(interrupt).__name__}")


def _task_that_raised(interrupt: BaseException, run: ActiveRun) -> str:
    """The task whose failure is ``interrupt`` (the first that failed so, if several did)."""
    from flowrun.state import TaskStatus

    kind = type(interrupt).__qualname__
    for name in run.dag.index:
        record = run.record(name)
        error = record.error
        if record.status is TaskStatus.FAILED and error is not None and error.type == kind:
            return name
    return "?"


def exit_status(interrupt: BaseException) -> int:
    """The exit status pytest gives a session that ``interrupt`` ended."""
    if isinstance(interrupt, pytest.exit.Exception) and interrupt.returncode is not None:
        return interrupt.returncode
    return pytest.ExitCode.INTERRUPTED


def not_served(exc: TaskFailedError, run: ActiveRun) -> tuple[bool, str]:
    """What a test waiting for a task that did not succeed gets: whether it is skipped
    (the task, or an ancestor, was), and its one line (``skip_text`` or ``failure_text``)."""
    cause = exc.__cause__
    if isinstance(cause, SKIP_EXCEPTIONS):
        return True, skip_text(exc, cause)
    return False, failure_text(exc, run)


def skip_text(exc: TaskFailedError, cause: BaseException | None) -> str:
    """The reason a test needing a skipped task is skipped."""
    reason = str(cause) if cause is not None else ""
    text = f"flowrun: task {exc.cause!r} skipped" + (f": {reason}" if reason else "")
    return mask_url_passwords(text)


def failure_text(exc: TaskFailedError, run: ActiveRun) -> str:
    """The one-line message that fails a test waiting for a task that did not succeed."""
    from flowrun.state import TaskStatus

    error = exc.error
    if exc.cause != exc.task:
        status = run.record(exc.cause).status
        what = f"task {exc.task!r} did not run because task {exc.cause!r} "
    else:
        status = exc.status
        what = f"task {exc.task!r} "
    if status is TaskStatus.TIMED_OUT and error is not None:
        what += "timed out: " + error.message.removeprefix(f"task {exc.cause!r}: ")
    elif status is TaskStatus.CANCELLED:
        what += "was cancelled"
    else:
        what += "failed" + (f": {error}" if error is not None else "")
    return mask_url_passwords(f"flowrun: {what}")  # it ends up in CI logs


def start_failed_text(exc: BaseException) -> str:
    """The line that fails every test needing a task when the run could not start."""
    return f"flowrun: the setup run could not start: {one_line(exc)}"


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
