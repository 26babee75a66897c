"""Garbage collection paused around bulk allocation.

Validating a DAG and setting up its run allocate a few objects per task, all of which
live as long as the run. CPython's collector, triggered by the allocation count, would
traverse them again and again while freeing nothing: at 100,000 tasks that made these
phases grow faster than linearly. Pausing it for their duration keeps them linear.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic garbage collector inside the block, if it was enabled."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
