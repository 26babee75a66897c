"""Targets 4-6: the pytest plugin on a synthetic suite (placeholder until written)."""

from __future__ import annotations

from bench._common import Result, Settings


def target_4(settings: Settings) -> list[Result]:
    return [Result("4", "plugin", None, None, note="not run: plugin unavailable")]


def target_5(settings: Settings) -> list[Result]:
    return []


def target_6(settings: Settings) -> list[Result]:
    return []
