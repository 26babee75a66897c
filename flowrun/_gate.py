"""The ready gate of a run: which tasks may start next, over index lists.

graphlib's ``prepare/get_ready/done`` shape, with a priority heap and failure: a node is
ready once every node blocking it is done; the ready node with the smallest key comes
out first (ties to the lower index); a failed node closes every node after it that has
not started. Used forwards to run a DAG (blocked by parents, keyed by the heaviest path
to a leaf) and backwards to tear it down (blocked by children). Pure: no asyncio, no
clock, no records. Imports nothing from flowrun.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

__all__ = ["Gate"]

#: ``_blocked`` of a node that will never start: a node before it failed.
_CLOSED = -1


class Gate:
    """Ready nodes of a DAG by priority; ``blockers[i]`` must be done before ``i`` is ready.

    ``unblocks[i]`` lists the nodes that ``i`` blocks (the reverse edges) and ``keys[i]``
    orders ready nodes, smallest first. ``ready_at[i]`` is the ``now`` passed when node
    ``i`` became ready (the ``start`` time for the initially ready ones).
    """

    __slots__ = ("_blocked", "_heap", "_keys", "_unblocks", "ready_at")

    def __init__(
        self,
        blockers: Sequence[Sequence[int]],
        unblocks: Sequence[Sequence[int]],
        keys: Sequence[float],
        start: float | None = None,
    ) -> None:
        self._blocked = blocked = [len(b) for b in blockers]
        self._unblocks = unblocks
        self._keys = keys
        self.ready_at: list[float | None] = [None] * len(blocked)
        heap = []
        ready_at = self.ready_at
        for i, count in enumerate(blocked):
            if not count:
                ready_at[i] = start
                heap.append((keys[i], i))
        heapq.heapify(heap)
        self._heap = heap

    def __bool__(self) -> bool:
        """True while a node is ready and not yet taken."""
        return bool(self._heap)

    def pop(self) -> int:
        """Take the ready node that goes first."""
        return heapq.heappop(self._heap)[1]

    def push(self, i: int) -> None:
        """Make node ``i`` ready again (a retry)."""
        heapq.heappush(self._heap, (self._keys[i], i))

    def clear(self) -> None:
        """Forget the ready nodes: nothing more is taken (a cancelled run)."""
        self._heap.clear()

    def done(self, i: int, now: float | None = None) -> None:
        """Node ``i`` is done: the nodes it was the last blocker of become ready at ``now``."""
        blocked, heap, keys, ready_at = self._blocked, self._heap, self._keys, self.ready_at
        for c in self._unblocks[i]:
            left = blocked[c] - 1
            blocked[c] = left
            if not left:
                ready_at[c] = now
                heapq.heappush(heap, (keys[c], c))

    def fail(self, i: int) -> list[int]:
        """Node ``i`` failed: close every node after it not closed yet, and return them.

        They are returned depth first from ``i``; none of them can have started, since
        each waits for ``i`` directly or through another node.
        """
        blocked, unblocks = self._blocked, self._unblocks
        closed: list[int] = []
        stack = list(unblocks[i])
        while stack:
            c = stack.pop()
            if blocked[c] < 0:  # closed already (a done() after that only lowers it)
                continue
            blocked[c] = _CLOSED
            closed.append(c)
            stack.extend(unblocks[c])
        return closed
