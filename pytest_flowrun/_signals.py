"""What the setup run needs from the process while it is active: SIGTERM handled like
Ctrl-C, child processes forked rather than vforked, and the imports its threads may need,
made before it starts.

``Signals`` and ``Spawning`` are installed when the run starts and restored when it ends
(``Signals`` drives both); nothing here happens at import. Imports only the standard
library (and, in ``import_what_the_run_needs``, the modules it names).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any


class Signals:
    """SIGTERM (and SIGINT) while the setup run is active: ``halt``, then Ctrl-C.

    CI sends SIGTERM when it cancels a job; its default kills the process with no
    teardown. Installed on the main thread only, and only over the default handlers
    (SIGINT's when it is not ignored), the handler calls ``halt`` (no new task attempt
    starts) and raises ``KeyboardInterrupt``: pytest then tears down and reports as for
    Ctrl-C, and a second signal interrupts that teardown at once. ``restore`` puts the
    previous handlers back.
    """

    def __init__(self, halt: Callable[[], None]) -> None:
        self._halt = halt
        self._previous: dict[int, Any] = {}
        self._spawning = Spawning()

    def install(self) -> None:
        """Install the handler over the default ones (only on the main thread), and
        ``Spawning``'s switch."""
        self._spawning.install()
        if self._previous or threading.current_thread() is not threading.main_thread():
            return
        defaults = {signal.SIGTERM: signal.SIG_DFL, signal.SIGINT: signal.default_int_handler}
        for signum, default in defaults.items():
            previous = signal.getsignal(signum)
            if previous is default:  # a handler of the user's, or SIG_IGN, is left alone
                self._previous[signum] = previous
                signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put back the handlers replaced by ``install`` (only where ours is still set),
        and ``Spawning``'s switch."""
        self._spawning.restore()
        previous, self._previous = self._previous, {}
        if not previous or threading.current_thread() is not threading.main_thread():
            return
        for signum, handler in previous.items():
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        __tracebackhide__ = True  # pytest reports where the signal found the main thread
        self._halt()
        raise KeyboardInterrupt


class Spawning:
    """Child processes forked, not vforked, while the setup run is active (Python < 3.13).

    CPython 3.11 and 3.12 (seen on 3.11.7 and 3.12.1) release the GIL while a vforked
    child execs, and a child started without ``env`` reads the parent's environment then.
    A thread that changes the environment meanwhile can free it under the child, and
    ``Popen`` fails with ``OSError: [Errno 14] Bad address``. Under the plugin that is the
    common case: tasks start servers in their threads while pytest sets ``PYTEST_CURRENT_TEST`` at
    every test phase on the main thread (about one start in seven failed when another
    thread changed the environment in a loop; none with fork, none on 3.13).
    ``subprocess._USE_VFORK``, private, is CPython's switch for this; fork costs a copy of
    the page tables per child, a few milliseconds for a large pytest process.
    """

    def __init__(self) -> None:
        self._previous: bool | None = None

    def install(self) -> None:
        """Turn vfork off, where this Python has the switch and the race."""
        use_vfork = getattr(subprocess, "_USE_VFORK", None)
        if self._previous is None and sys.version_info < (3, 13) and type(use_vfork) is bool:
            self._previous = use_vfork
            subprocess._USE_VFORK = False  # type: ignore[misc]  # Final in typeshed

    def restore(self) -> None:
        """Put the switch back as ``install`` found it."""
        if self._previous is not None:
            subprocess._USE_VFORK, self._previous = self._previous, None  # type: ignore[misc]


def import_what_the_run_needs() -> None:
    """Import on the main thread, before the run starts, what its threads may need.

    pytest rewrites the asserts of every module of a ``pytest11`` distribution, so a
    first import of one of them runs pytest's import hook; on the loop thread, while the
    main thread compiles too, that crashed (``SystemError: AST constructor recursion depth
    mismatch``). The runtime's lazy imports (the traceback of a failure, a name's close
    matches) and the plugin's own (the report, the summary) are all made here.
    """
    import ast  # noqa: F401  # traceback's caret anchors parse source lines
    import difflib  # noqa: F401  # flowrun.errors.UnknownTaskError
    import linecache  # noqa: F401
    import traceback  # noqa: F401  # flowrun.state.TaskError.from_exception
    import unicodedata  # noqa: F401  # traceback, for a line with wide characters

    import flowrun._report  # noqa: F401  # build_report
    import pytest_flowrun._terminal  # noqa: F401  # the summary, after the run
