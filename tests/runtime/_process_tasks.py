"""Module-level tasks for the process-pool tests: a worker process imports them by name."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from flowrun.context import RunContext
from flowrun.task import TaskRegistry, task

registry = TaskRegistry()


@task(registry=registry)
def where() -> int:
    """Return the id of the process the task ran in."""
    return os.getpid()


@task(registry=registry, deps=[where])
def square(upstream: dict[str, int]) -> int:
    """Square a number derived from the parent's result, in a worker process too."""
    return (upstream["where"] % 7) ** 2


@task(registry=registry, deps=[square])
def labelled(context: RunContext[dict[str, str]], square: int) -> str:
    """Read the run context (pickled to the worker) and a parent's result by name."""
    return f"{context.deps['label']}={square} in {os.getpid()}"


def nap() -> None:
    """Sleep for a tenth of a second."""
    time.sleep(0.1)


def exhausted() -> int:
    """Raise ``StopIteration``, as ``next()`` on an empty iterator does."""
    return next(iter(()))


def resource() -> Iterator[str]:
    """A sync generator: its teardown cannot be resumed in another process."""
    yield "r"
