"""Checks of the options that a task and a run take: numbers of seconds, retries.

Shared by ``@task`` and ``SchedulerConfig``; each bad value raises its own
``InvalidOptionError`` naming the option, the value and what is expected. Imports
``flowrun.errors`` only.
"""

from __future__ import annotations

import math

from flowrun.errors import InvalidOptionError, InvalidRetriesError, InvalidTimeoutError


def _check_options(name: str, timeout_s: object, retries: object, retry_delay_s: object) -> None:
    if (
        (timeout_s is None or (type(timeout_s) in _NUMBERS and 0 < timeout_s < math.inf))  # type: ignore[operator]
        and type(retries) is int
        and retries >= 0
        and type(retry_delay_s) in _NUMBERS
        and 0 <= retry_delay_s < math.inf  # type: ignore[operator]
    ):
        return  # the common case, decided without the checks below (NaN fails the bounds)
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


_NUMBERS = (int, float)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
