"""A signal wakes the event loop while a run's sync tasks block in worker threads.

CPython runs a signal's Python handler on the main thread, but the kernel may deliver a
process's signal to any thread that does not block it, such as a worker blocked in a
sync task. The main thread, idle in the event loop's ``select`` with no timeout, is then
not interrupted: Ctrl-C under ``asyncio.run`` (whose handler cancels the main task) is
acted on only when something else wakes the loop, at the earliest when a blocked task
returns, never if it does not. asyncio's own remedy, in ``loop.add_signal_handler``, is a
wakeup fd; ``asyncio.run``'s Ctrl-C handling sets none. While a run with sync tasks is
active on the main thread, ``Wakeup`` sets one that the loop reads, unless one is set
already. Imports the standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading

__all__ = ["Wakeup"]


class Wakeup:
    """A socket pair whose write end is the process's signal wakeup fd, read by ``loop``."""

    __slots__ = ("_loop", "_read", "_write")

    def __init__(self, loop: asyncio.AbstractEventLoop, read: socket.socket, write: socket.socket):
        self._loop = loop
        self._read = read
        self._write = write

    @classmethod
    def install(cls, loop: asyncio.AbstractEventLoop) -> Wakeup | None:
        """Set the wakeup fd for ``loop``; None where it cannot or need not be set (not on
        the main thread, a wakeup fd set already, a loop that cannot watch a socket)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        read, write = socket.socketpair()
        read.setblocking(False)
        write.setblocking(False)
        try:
            loop.add_reader(read.fileno(), _drain, read)
        except (NotImplementedError, OSError, ValueError):
            read.close()
            write.close()
            return None
        try:
            previous = signal.set_wakeup_fd(write.fileno(), warn_on_full_buffer=False)
        except (ValueError, OSError):
            previous = None
        if previous != -1:  # someone wakes on signals already (or it failed): keep theirs
            if previous is not None:
                signal.set_wakeup_fd(previous)
            loop.remove_reader(read.fileno())
            read.close()
            write.close()
            return None
        return cls(loop, read, write)

    def remove(self) -> None:
        """Unset the wakeup fd (if it is still this one) and close the sockets."""
        if threading.current_thread() is threading.main_thread():
            current = signal.set_wakeup_fd(-1)
            if current not in (-1, self._write.fileno()):
                signal.set_wakeup_fd(current)  # replaced since: put that one back
        with contextlib.suppress(Exception):  # a closed loop: nothing left to unregister
            self._loop.remove_reader(self._read.fileno())
        self._read.close()
        self._write.close()


def _drain(read: socket.socket) -> None:
    # Only the wakeup matters: the signal's handler runs on its own once the loop is awake.
    with contextlib.suppress(OSError):
        while read.recv(4096):
            pass
