"""The reference schedulers flowrun is measured against (stdlib only).

``run_minimal`` is the minimal hand-rolled scheduler of the issue: ``graphlib``'s
``TopologicalSorter`` to order the DAG, one asyncio task per ready node and a semaphore
for ``max_parallel``. It keeps results and nothing else: no records, no timeouts, no
skip propagation. Sync task functions run with ``loop.run_in_executor`` on the pool
given, the same pool flowrun is handed in the sync comparisons.
"""

from __future__ import annotations

import asyncio
import graphlib
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any


async def run_minimal(
    graph: Mapping[str, tuple[str, ...]],
    fns: Mapping[str, Callable[[], Any]],
    max_parallel: int,
    *,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Run ``graph`` (name -> dependencies) and return every task's result.

    With ``executor``, each ``fns[name]`` is a plain function run in it; without, each is
    a coroutine function awaited on the loop.
    """
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()
    loop = asyncio.get_running_loop()
    semaphore = asyncio.Semaphore(max_parallel)
    finished = loop.create_future()
    results: dict[str, Any] = {}
    tasks: set[asyncio.Task[None]] = set()
    remaining = len(graph)

    async def run(node: str) -> None:
        nonlocal remaining
        try:
            async with semaphore:
                if executor is None:
                    results[node] = await fns[node]()
                else:
                    results[node] = await loop.run_in_executor(executor, fns[node])
        except Exception as exc:  # not a feature: just never hang the bench
            if not finished.done():
                finished.set_exception(exc)
            return
        sorter.done(node)
        spawn(sorter.get_ready())
        remaining -= 1
        if not remaining:
            finished.set_result(None)

    def spawn(nodes: tuple[str, ...]) -> None:
        for node in nodes:
            t = loop.create_task(run(node))
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    if not graph:
        return results
    spawn(sorter.get_ready())
    await finished
    return results
