"""What every target module shares: the result row and paired, interleaved timing."""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Settings:
    """How hard to measure: ``quick`` is the CI smoke run, the full run repeats more."""

    quick: bool
    reps: int

    @classmethod
    def make(cls, quick: bool, reps: int | None = None) -> Settings:
        return cls(quick, reps if reps is not None else (5 if quick else 11))


@dataclass
class Result:
    """One row of the table: a measured figure against its target.

    ``value`` is a ratio (``unit`` "x") or an absolute figure (``unit`` e.g. "B/task");
    ``passed`` is None when the figure is informative or could not be measured.
    """

    target: str
    figure: str
    value: float | None
    limit: float | None
    unit: str = "x"
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        if self.value is None or self.limit is None:
            return None
        return self.value <= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "figure": self.figure,
            "value": self.value,
            "limit": self.limit,
            "unit": self.unit,
            "passed": self.passed,
            "note": self.note,
            "details": self.details,
        }


def paired(
    a: Callable[[], float], b: Callable[[], float], reps: int
) -> tuple[list[float], list[float]]:
    """Measure ``a`` and ``b`` ``reps`` times each, alternating which goes first.

    Each callable returns the seconds it measured; a full collection runs before each
    so neither side pays for the other's garbage.
    """
    first: list[float] = []
    second: list[float] = []
    for rep in range(reps):
        order = ((a, first), (b, second)) if rep % 2 == 0 else ((b, second), (a, first))
        for fn, out in order:
            gc.collect()
            out.append(fn())
    return first, second


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratio_of_medians(num: list[float], den: list[float]) -> float:
    return median(num) / median(den)


def median_of_ratios(num: list[float], den: list[float]) -> float:
    return statistics.median(n / d for n, d in zip(num, den, strict=True))
