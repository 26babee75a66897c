"""Per-resource limits: what the running tasks hold, and the ready tasks waiting for more.

Tasks declare what they hold while they run (``@task(resources={"docker": 1})``) and
``SchedulerConfig(resources={"docker": 2})`` caps each resource, as Airflow's pools and
Dask's worker resources do. A run's attempts take their task's resources when they start
and give them back when they end, however they end (success, failure, timeout,
cancellation, abandonment) and while they wait out a retry delay; teardowns hold them too,
each against the caps on its own, after the attempts are over.

No head-of-line blocking: the ``Gate`` still hands out ready tasks by priority, and a task
that does not fit is parked under the first resource it is short of, so the next one in
priority order that fits starts instead. When a resource is given back, the parked tasks
the freed amount can take return to the gate, best first, and compete there again by
priority. A task needing much of a busy resource may thus wait while smaller ones keep it
busy; it starts at the latest when every holder of that resource has ended. A run whose
tasks declare no resources has no ``Resources`` at all and pays nothing for them.
Imports the ``Gate`` and the ``TaskSpec`` type.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from flowrun._gate import Gate
from flowrun.task import TaskSpec

__all__ = ["Resources"]


class Resources:
    """The free amount of each capped resource and the tasks parked until one is given back.

    ``needs[i]`` lists task ``i``'s ``(resource, amount)`` pairs by resource index;
    ``keys`` are the gate's priority keys, which order the parked tasks too.
    """

    __slots__ = ("_free", "_gate", "_keys", "_needs", "_parked")

    def __init__(
        self,
        needs: Sequence[tuple[tuple[int, int], ...]],
        caps: Sequence[int],
        gate: Gate,
        keys: Sequence[float],
    ) -> None:
        self._needs = needs
        self._free = list(caps)
        self._gate = gate
        self._keys = keys
        self._parked: list[list[tuple[float, int]]] = [[] for _ in caps]

    @classmethod
    def of(
        cls, specs: Sequence[TaskSpec], caps: Mapping[str, int], gate: Gate, keys: Sequence[float]
    ) -> Resources | None:
        """The resources of a run of ``specs``, or None if none of them declares any.

        The caller has checked every amount against ``caps`` (``Scheduler.start``).
        """
        if not any(spec.resources for spec in specs):  # a run's caller may know already
            return None
        index = {name: r for r, name in enumerate(caps)}
        needs = [tuple((index[name], amount) for name, amount in s.resources) for s in specs]
        return cls(needs, list(caps.values()), gate, keys)

    def take(self, i: int) -> bool:
        """Hold task ``i``'s resources and return True if they are free, else park it."""
        need = self._needs[i]
        free = self._free
        for r, amount in need:
            if free[r] < amount:
                heapq.heappush(self._parked[r], (self._keys[i], i))
                return False
        for r, amount in need:
            free[r] -= amount
        return True

    def give_back(self, i: int) -> None:
        """Task ``i`` no longer runs: free what it held, and unpark what may fit now.

        Parked tasks go back to the gate best first while the freed amount can take them
        (one that needs more than is left stays parked, the next is tried); they take
        their resources when the gate hands them out again.
        """
        free = self._free
        for r, amount in self._needs[i]:
            free[r] += amount
            parked = self._parked[r]
            room = free[r]
            kept: list[tuple[float, int]] = []
            while parked and room > 0:
                entry = heapq.heappop(parked)
                wanted = _amount(self._needs[entry[1]], r)
                if wanted <= room:
                    room -= wanted
                    self._gate.push(entry[1])
                else:
                    kept.append(entry)
            for entry in kept:
                heapq.heappush(parked, entry)

    def clear(self) -> None:
        """Forget the parked tasks: nothing more starts (a stopped run)."""
        for parked in self._parked:
            parked.clear()


def _amount(need: tuple[tuple[int, int], ...], r: int) -> int:
    for resource, amount in need:
        if resource == r:
            return amount
    return 0
