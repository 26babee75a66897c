"""Stopping async work that may ignore its cancellation: cancel, wait a grace period, abandon.

Async task code can swallow a ``CancelledError`` (a bare ``except:`` around an await). A
run never waits for such code for ever: it waits ``grace_s`` and then abandons it, keeping
a reference to it until it ends so that asyncio does not destroy it while it is pending.
This module imports only asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

__all__ = ["Grace"]


class Grace:
    """The one way a run stops async work it started; one per run.

    ``grace_s`` is how long code that ignores its cancellation is waited for.
    """

    __slots__ = ("_abandoned", "grace_s")

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self._abandoned: set[asyncio.Task[Any]] = set()

    async def cancel(self, tasks: Collection[asyncio.Task[Any]]) -> None:
        """Cancel ``tasks``, wait up to the grace for them to end, abandon the rest.

        If the wait itself is cancelled (a second interrupt), the tasks still running are
        abandoned and the cancellation propagates.
        """
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        try:
            await asyncio.wait(tasks, timeout=self.grace_s)
        finally:
            for task in tasks:
                if not task.done():
                    self.abandon(task)

    async def wait(self, task: asyncio.Task[Any], timeout_s: float) -> bool:
        """Wait for ``task`` up to ``timeout_s`` plus the grace; abandon it if still running.

        Returns whether it ended. For work that cancels itself at ``timeout_s`` (an
        ``asyncio.timeout`` inside it): the grace is how long it may ignore that.
        """
        await asyncio.wait((task,), timeout=timeout_s + self.grace_s)
        if task.done():
            return True
        self.abandon(task)
        return False

    def abandon(self, task: asyncio.Task[Any]) -> None:
        """Stop waiting for ``task`` but keep it referenced until it ends."""
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)
