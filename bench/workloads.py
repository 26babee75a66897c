"""Workload generators: DAG shapes as ``{name: deps}`` mappings, in topological order.

Every generator is deterministic (fixed seeds), so the minimal scheduler and flowrun run
exactly the same graph.
"""

from __future__ import annotations

import random

Graph = dict[str, tuple[str, ...]]


def independent(n: int) -> Graph:
    """``n`` tasks with no dependencies."""
    return {f"t{i}": () for i in range(n)}


def chain(n: int) -> Graph:
    """``n`` tasks, each depending on the one before."""
    graph: Graph = {"t0": ()}
    for i in range(1, n):
        graph[f"t{i}"] = (f"t{i - 1}",)
    return graph


def layered(n: int, *, parents: int = 3, width: int = 100, seed: int = 4) -> Graph:
    """``n`` tasks in layers of ``width``; each task past the first layer has ``parents``
    distinct parents drawn from the layer just above (fixed ``seed``)."""
    rng = random.Random(seed)
    graph: Graph = {}
    previous: list[str] = []
    for start in range(0, n, width):
        layer = [f"t{i}" for i in range(start, min(start + width, n))]
        for name in layer:
            if previous:
                k = min(parents, len(previous))
                graph[name] = tuple(rng.sample(previous, k))
            else:
                graph[name] = ()
        previous = layer
    return graph
