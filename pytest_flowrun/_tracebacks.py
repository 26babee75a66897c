"""Line numbers for the traceback of an interrupt, so pytest can print it.

A signal handler runs between two bytecode instructions of whatever the main thread is
doing, and some instructions have no line (since Python 3.11: the jump back of a
``for`` loop whose body ends in an ``if``, for one). A ``KeyboardInterrupt`` raised
there has a traceback entry whose ``tb_lineno`` is ``None``, and pytest's terminal
reporter then crashes formatting it (``TypeError``, exit code 1 instead of 2) before
any teardown report is printed. Ctrl-C and SIGTERM land anywhere, so every interrupt's
traceback goes through ``give_lines`` first. Imports only the standard library.
"""

from __future__ import annotations

from types import CodeType, TracebackType


def give_lines(exc: BaseException) -> None:
    """Give each entry of ``exc``'s traceback, and of the exceptions it chains, a line:
    the line of the nearest instruction before the one it stopped at that has one.

    Entries are replaced in place through ``tb_next``, so whoever holds the traceback
    (pytest's ``ExceptionInfo``) sees the repair; its first entry, where the exception
    was caught, always stopped at a call and has a line.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        entry = current.__traceback__
        while entry is not None:
            following = entry.tb_next
            if following is not None and following.tb_lineno is None:
                line = _line_before(following.tb_frame.f_code, following.tb_lasti)
                entry.tb_next = following = TracebackType(
                    following.tb_next, following.tb_frame, following.tb_lasti, line
                )
            entry = following
        current = current.__cause__ or current.__context__


def _line_before(code: CodeType, offset: int) -> int:
    line = code.co_firstlineno
    for start, _end, lineno in code.co_lines():
        if start > offset:
            break
        if lineno is not None:
            line = lineno
    return line
