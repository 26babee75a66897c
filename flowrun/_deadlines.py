"""The timeouts of a run's async attempts: one loop timer per distinct timeout, not two per attempt.

An async attempt is bounded by cancelling its asyncio task at its deadline; if it ignores
that cancellation (a bare ``except:`` around an await), it is given up on the grace period
later. ``asyncio.timeout`` plus a watchdog cost two timer handles and two heap operations
per attempt: most of a no-op task's cost. Here the attempts that share a timeout value
have deadlines in the order they started, so each value keeps a plain deque, and one
timer per value waits for its earliest deadline (trio keeps its deadlines in one
structure for the same reason). An attempt that ends early is not looked for: its entry
is dropped when its deadline comes. Sync attempts keep the executor's own deadline,
which starts when a worker picks the call up. Imports asyncio only.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["Deadlines"]

_Entry = tuple[float, int, "asyncio.Task[Any]"]

#: The loop runs a timer up to one clock tick early (as asyncio does): so may we.
_TICK = time.get_clock_info("monotonic").resolution


class Deadlines:
    """Cancels attempts at their deadline and reports those still running a grace later.

    ``current(i, task)`` says whether ``task`` is still task ``i``'s attempt in flight;
    ``overdue(i, task, timeout_s)`` is called for one that ignored its cancellation for
    ``grace_s``. ``expired`` maps the attempts cancelled by their deadline to their
    timeout, until the caller ``settle``s them.
    """

    __slots__ = (
        "_current",
        "_grace_s",
        "_late",
        "_late_timer",
        "_loop",
        "_overdue",
        "_queues",
        "_timers",
        "expired",
    )

    def __init__(
        self,
        grace_s: float,
        current: Callable[[int, asyncio.Task[Any]], bool],
        overdue: Callable[[int, asyncio.Task[Any], float], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._grace_s = grace_s
        self._current = current
        self._overdue = overdue
        self._queues: dict[float, deque[_Entry]] = {}
        self._timers: dict[float, asyncio.TimerHandle] = {}
        self._late: deque[tuple[float, int, asyncio.Task[Any], float]] = deque()
        self._late_timer: asyncio.TimerHandle | None = None
        self.expired: dict[asyncio.Task[Any], float] = {}

    def watch(self, i: int, task: asyncio.Task[Any], timeout_s: float) -> None:
        """Cancel ``task`` (task ``i``'s attempt, starting now) ``timeout_s`` from now."""
        queue = self._queues.get(timeout_s)
        if queue is None:
            queue = self._queues[timeout_s] = deque()
        deadline = self._loop.time() + timeout_s
        queue.append((deadline, i, task))
        if len(queue) == 1:
            self._timers[timeout_s] = self._loop.call_at(deadline, self._expire, timeout_s)

    def settle(self, task: asyncio.Task[Any]) -> float | None:
        """Forget ``task``'s expiry; the timeout it ran out of, or None if it did not."""
        return self.expired.pop(task, None)

    def close(self) -> None:
        """Stop every timer: the run is over (or cancelled), nothing more expires."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._queues.clear()
        if self._late_timer is not None:
            self._late_timer.cancel()
            self._late_timer = None
        self._late.clear()

    def _expire(self, timeout_s: float) -> None:
        queue = self._queues[timeout_s]
        now = self._loop.time() + _TICK
        while queue and queue[0][0] <= now:
            _, i, task = queue.popleft()
            if not task.done() and self._current(i, task):
                self.expired[task] = timeout_s
                task.cancel()
                self._late.append((now + self._grace_s, i, task, timeout_s))
                if self._late_timer is None:
                    self._late_timer = self._loop.call_at(now + self._grace_s, self._give_up)
        if queue:
            self._timers[timeout_s] = self._loop.call_at(queue[0][0], self._expire, timeout_s)
        else:
            del self._timers[timeout_s]

    def _give_up(self) -> None:
        late = self._late
        now = self._loop.time() + _TICK
        while late and late[0][0] <= now:
            _, i, task, timeout_s = late.popleft()
            if not task.done() and self._current(i, task):
                self._overdue(i, task, timeout_s)
        self._late_timer = self._loop.call_at(late[0][0], self._give_up) if late else None
