"""The DAG builder: validates a set of task specs and orders them.

Pure and synchronous. Every check happens here, before anything runs: missing
dependencies (with close matches), self-dependencies, cycles (shown as ``a -> b -> a``)
and parameters nobody can fill. The order is topological, ties broken by registration
order, so the same registry always yields the same DAG.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches

from flowrun._gc import gc_paused
from flowrun.errors import (
    CycleError,
    MissingDependencyError,
    SelfDependencyError,
    TaskDefinitionError,
    UnknownTaskError,
)
from flowrun.task import TaskSpec

__all__ = ["Dag", "build_dag"]


@dataclass(frozen=True, slots=True, eq=False)
class Dag:
    """A validated DAG: specs in topological order with their edges as index tuples."""

    name: str
    specs: tuple[TaskSpec, ...]
    index: Mapping[str, int]
    parents: tuple[tuple[int, ...], ...]
    children: tuple[tuple[int, ...], ...]

    def __len__(self) -> int:
        return len(self.specs)

    @property
    def names(self) -> list[str]:
        """Task names in topological order."""
        return [spec.name for spec in self.specs]

    def levels(self) -> list[int]:
        """For each task (by index), its depth: 0 for roots, else 1 + the deepest parent."""
        depth = [0] * len(self.specs)
        for i, parents in enumerate(self.parents):
            if parents:
                depth[i] = 1 + max(depth[p] for p in parents)
        return depth

    def ancestors(self, names: Iterable[str]) -> set[str]:
        """The named tasks and every task they depend on, directly or not."""
        seen: set[int] = set()
        stack = [self._index_of(name) for name in names]
        while stack:
            i = stack.pop()
            if i not in seen:
                seen.add(i)
                stack.extend(self.parents[i])
        return {self.specs[i].name for i in seen}

    def descendants(self, name: str) -> set[str]:
        """Every task that depends on ``name``, directly or not (``name`` excluded)."""
        seen: set[int] = set()
        stack = list(self.children[self._index_of(name)])
        while stack:
            i = stack.pop()
            if i not in seen:
                seen.add(i)
                stack.extend(self.children[i])
        return {self.specs[i].name for i in seen}

    def subgraph(self, names: Iterable[str]) -> Dag:
        """The DAG of the named tasks plus all their ancestors, in the same order."""
        keep = self.ancestors(names)
        return _assemble(self.name, [spec for spec in self.specs if spec.name in keep])

    def critical_path(self, weights: Mapping[str, float]) -> tuple[list[str], float]:
        """The heaviest root-to-leaf path under ``weights`` (missing names weigh 0)."""
        if not self.specs:
            return [], 0.0
        names = [spec.name for spec in self.specs]
        best, via = _heaviest_paths(
            range(len(names)), self.parents, [weights.get(n, 0.0) for n in names]
        )
        return _trace_path(names, best, via)

    def render(
        self, *, executor: str | None = None, resources: Mapping[str, int] | None = None
    ) -> str:
        """A readable text view: the tasks level by level with what each depends on.

        A task's line shows what it holds while it runs (``docker=1``). ``executor`` (the
        class name of what runs sync tasks) and ``resources`` (the caps) add a line under
        the title; ``Engine.display_dag`` passes its scheduler's.
        """
        depth = self.levels()
        count = len(self.specs)
        n_levels = (max(depth) + 1) if depth else 0
        lines = [
            f"dag {self.name!r}: {count} task{'s' * (count != 1)} "
            f"in {n_levels} level{'s' * (n_levels != 1)}"
        ]
        setting = []
        if executor is not None:
            setting.append(f"sync tasks in {executor}")
        if resources:
            setting.append("resources " + " ".join(f"{k}={v}" for k, v in resources.items()))
        if setting:
            lines.append("  " + "; ".join(setting))
        for level in range(n_levels):
            lines.append(f"  level {level}")
            for i, spec in enumerate(self.specs):
                if depth[i] != level:
                    continue
                options = [spec.kind.value]
                if spec.timeout_s is not None:
                    options.append(f"timeout {spec.timeout_s:g}s")
                if spec.retries:
                    options.append(f"retries {spec.retries}")
                if spec.resources:
                    options.append(" ".join(f"{k}={v}" for k, v in spec.resources))
                line = f"    {spec.name} ({', '.join(options)})"
                if spec.deps:
                    line += " <- " + ", ".join(spec.deps)
                lines.append(line)
        return "\n".join(lines)

    def _index_of(self, name: str) -> int:
        try:
            return self.index[name]
        except KeyError:
            raise UnknownTaskError(name, list(self.index)) from None


def build_dag(name: str, specs: Mapping[str, TaskSpec] | Iterable[TaskSpec]) -> Dag:
    """Validate ``specs`` and return them as a ``Dag``.

    Raises ``MissingDependencyError``, ``SelfDependencyError``, ``CycleError`` or
    ``TaskDefinitionError`` (a parameter that only the pytest plugin can fill).
    """
    with gc_paused():
        return _build(name, specs)


def _build(name: str, specs: Mapping[str, TaskSpec] | Iterable[TaskSpec]) -> Dag:
    ordered = list(specs.values()) if isinstance(specs, Mapping) else list(specs)
    position = {spec.name: i for i, spec in enumerate(ordered)}
    # One pass checks every task in order and finds its parents; when each parent comes
    # before its child (tasks registered parents first, the usual case), the order is
    # already topological and the indices found are the DAG's own: no sort, no rebuild.
    parents: list[tuple[int, ...]] = []
    in_order = len(position) == len(ordered)  # a name given twice: sort it out below
    for i, spec in enumerate(ordered):
        if spec.requires:
            raise TaskDefinitionError(
                spec.name,
                f"task {spec.name!r} needs {', '.join(repr(r) for r in spec.requires)}, "
                "which only the pytest plugin can supply (it is a pytest fixture)",
            )
        found = []
        for dep in spec.deps:
            if dep == spec.name:
                raise SelfDependencyError(spec.name)
            p = position.get(dep)
            if p is None:
                raise MissingDependencyError(
                    spec.name, dep, get_close_matches(dep, list(position), n=3, cutoff=0.6)
                )
            if p > i:
                in_order = False
            found.append(p)
        parents.append(tuple(found))
    if in_order:
        return _assemble(name, ordered, position, parents)
    order = _stable_topological_order(parents)
    if len(order) != len(ordered):
        raise CycleError(_find_cycle(ordered, order, position))
    return _assemble(name, [ordered[i] for i in order])


def _heaviest_paths(
    order: Iterable[int], before: Sequence[Sequence[int]], weights: Sequence[float]
) -> tuple[list[float], list[int]]:
    """The heaviest chain ending at each node: its weight, and the node before it on it.

    Nodes are visited in ``order``, in which every node of ``before[i]`` comes before
    ``i``. Forwards (topological order, ``before`` = parents) this gives the heaviest
    path from a root to each task: the critical path. Backwards (reversed order,
    ``before`` = children) it gives the heaviest path from each task to a leaf: the
    scheduler's priority. ``via[i]`` is -1 where the chain starts.
    """
    best = [0.0] * len(before)
    via = [-1] * len(before)
    for i in order:
        top = 0.0
        for b in before[i]:
            if best[b] > top or via[i] < 0:
                top = best[b]
                via[i] = b
        best[i] = top + weights[i]
    return best, via


def _trace_path(
    names: Sequence[str], best: Sequence[float], via: Sequence[int]
) -> tuple[list[str], float]:
    """The heaviest of the chains ``_heaviest_paths`` found, as names from its start."""
    if not best:
        return [], 0.0
    end = max(range(len(best)), key=best.__getitem__)
    path = []
    node = end
    while node >= 0:
        path.append(names[node])
        node = via[node]
    return path[::-1], best[end]


def _stable_topological_order(parents: Sequence[Sequence[int]]) -> list[int]:
    """Indices in topological order, always taking the lowest ready index next.

    ``parents[i]`` lists the indices node ``i`` depends on. An input order that is already
    topological (the usual case: tasks registered parents-first) is what this returns,
    so it is recognised in linear time, without the heap. On a cycle the result is
    shorter than the input.
    """
    if all(p < i for i, ps in enumerate(parents) for p in ps):
        return list(range(len(parents)))
    pending = [len(ps) for ps in parents]
    children: list[list[int]] = [[] for _ in parents]
    for i, ps in enumerate(parents):
        for p in ps:
            children[p].append(i)
    ready = [i for i, count in enumerate(pending) if not count]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for child in children[i]:
            pending[child] -= 1
            if not pending[child]:
                heapq.heappush(ready, child)
    return order


def _assemble(
    name: str,
    topo: Sequence[TaskSpec],
    index: dict[str, int] | None = None,
    parents: Sequence[tuple[int, ...]] | None = None,
) -> Dag:
    """The ``Dag`` of ``topo`` (in topological order), with its ``index`` and ``parents``
    if the caller has them already."""
    if index is None or parents is None:
        index = {spec.name: i for i, spec in enumerate(topo)}
        parents = [tuple(index[dep] for dep in spec.deps) for spec in topo]
    children: list[list[int]] = [[] for _ in topo]
    for i, ps in enumerate(parents):
        for p in ps:
            children[p].append(i)
    return Dag(
        name=name,
        specs=tuple(topo),
        index=index,
        parents=tuple(parents),
        children=tuple(map(tuple, children)),
    )


def _find_cycle(
    ordered: Sequence[TaskSpec], placed: Sequence[int], position: Mapping[str, int]
) -> list[str]:
    """Walk dependencies among the tasks the topological sort could not place until one
    repeats (each of them waits on another of them, so the walk always finds a cycle)."""
    stuck = set(range(len(ordered))).difference(placed)
    start = min(stuck)
    seen: dict[int, int] = {}
    path: list[int] = []
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(position[d] for d in ordered[node].deps if position[d] in stuck)
    cycle = [*path[seen[node] :], node]
    return [ordered[i].name for i in cycle]
