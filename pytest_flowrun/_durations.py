"""Task durations kept in pytest's cache from one session to the next.

Of the tasks ready at once, the setup run starts first those that head the heaviest
path to the end of the DAG; what each task took last time, read here, is what makes a
path heavy. Without the cache plugin (``-p no:cacheprovider``) nothing is read or kept.

Imports the plugin's ``_names`` only.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest

from pytest_flowrun._names import DURATIONS_KEY


def expected_durations(config: pytest.Config, selected: Collection[str]) -> dict[str, float]:
    """The kept duration of each task in ``selected`` that has one (in seconds)."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return {}
    stored = cache.get(DURATIONS_KEY, {})
    if not isinstance(stored, dict):
        return {}
    return {
        name: float(value)
        for name, value in stored.items()
        if name in selected and isinstance(value, (int, float)) and value >= 0
    }


def save_durations(config: pytest.Config, report: dict[str, Any]) -> None:
    """Keep the duration of each task that succeeded in ``report``, beside the others kept."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return
    stored = cache.get(DURATIONS_KEY, {})
    durations = dict(stored) if isinstance(stored, dict) else {}
    for name, task in report["tasks"].items():
        if task["status"] == "SUCCESS" and task["duration_s"] is not None:
            durations[name] = round(task["duration_s"], 6)
    cache.set(DURATIONS_KEY, durations)
