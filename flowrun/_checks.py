"""Checks of the options that a task and a run take: numbers of seconds, retries, resources.

Shared by ``@task`` and ``SchedulerConfig``; each bad value raises its own
``InvalidOptionError`` naming the option, the value and what is expected. Imports
``flowrun.errors`` only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from flowrun.errors import (
    InvalidOptionError,
    InvalidResourceError,
    InvalidRetriesError,
    InvalidTimeoutError,
)


def _check_options(name: str, timeout_s: object, retries: object, retry_delay_s: object) -> None:
    # The common case, decided without the checks below (NaN fails the bounds). An int is
    # compared with ints only: an int against a float (infinity) is CPython's slow path.
    if (
        (
            timeout_s is None
            or (type(timeout_s) is int and 0 < timeout_s < _HUGE)
            or (type(timeout_s) is float and 0.0 < timeout_s < _INF)
        )
        and type(retries) is int
        and retries >= 0
        and (
            (type(retry_delay_s) is float and 0.0 <= retry_delay_s < _INF)
            or (type(retry_delay_s) is int and 0 <= retry_delay_s < _HUGE)
        )
    ):
        return
    if timeout_s is not None and (
        not _is_real(timeout_s) or not (0 < float(timeout_s) < math.inf)  # type: ignore[arg-type]
    ):
        raise InvalidTimeoutError(
            "timeout_s", timeout_s, "a positive number of seconds, or None", task=name
        )
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise InvalidRetriesError("retries", retries, "a whole number >= 0", task=name)
    if not _is_real(retry_delay_s) or not (0 <= float(retry_delay_s) < math.inf):  # type: ignore[arg-type]
        raise InvalidOptionError(
            "retry_delay_s", retry_delay_s, "a number of seconds >= 0", task=name
        )


_INF = math.inf
#: Ints from here on are left to the checks below: past about 2**1024 no float holds them.
_HUGE = 1 << 1000


def _is_real(value: object) -> bool:
    """An int or float that ``float()`` takes (not a bool, not NaN)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return not math.isnan(value)
    except OverflowError:  # an int beyond any float
        return False


def _check_resources(task: str | None, resources: object) -> tuple[tuple[str, int], ...]:
    """``resources`` (a mapping of names to whole numbers >= 1) as sorted pairs.

    ``task`` names the task declaring them, or is None for ``SchedulerConfig``'s caps.
    Raises ``InvalidResourceError``.
    """
    if not isinstance(resources, Mapping):
        raise InvalidResourceError(
            None,
            resources,
            "a mapping of resource names to whole numbers, e.g. {'docker': 1}",
            task=task,
        )
    what = "an amount" if task is not None else "a cap"
    for name, amount in resources.items():
        if not isinstance(name, str) or not name.strip():
            raise InvalidResourceError(
                None,
                dict(resources),
                f"resource names are non-empty strings, got {name!r}",
                task=task,
            )
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
            raise InvalidResourceError(name, amount, f"{what} is a whole number >= 1", task=task)
    return tuple(sorted(resources.items()))
