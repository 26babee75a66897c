"""flowrun's own modules, imported as Python imports them rather than through pytest's
assert rewriting.

pytest rewrites the asserts of every module of a distribution that declares a
``pytest11`` entry point, and flowrun's declares one, so its runtime is rewritten too.
Rewriting parses each module, walks its tree and compiles it again, and the result is
cached in ``__pycache__`` only when bytecode may be written: with
``PYTHONDONTWRITEBYTECODE=1``, which CI images often set, every pytest start redid it for
each module a run imports, ignoring the bytecode pip compiled at install. On a one-task
suite installed from a wheel that was about 170 ms per start, as much as pytest's own
start-up. Neither package holds test assertions (their asserts are internal checks), so
``install`` puts a finder ahead of pytest's that hands their modules to Python's own
path finder, which loads that bytecode.

A second session in the same process marks the packages for rewriting again while they
are imported already, and pytest warns about a marked module its hook did not import
unless the module's docstring says ``PYTEST_DONT_REWRITE``: ``flowrun``'s does (pytest's
hook imported ``pytest_flowrun`` itself, with the entry point). Imports only the
standard library.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType

__all__ = ["install"]

_PACKAGES = ("flowrun", "pytest_flowrun")
_SUBMODULES = tuple(f"{package}." for package in _PACKAGES)


class _OwnModules:
    """A meta path finder for flowrun's two packages only: Python's path finder's spec."""

    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name in _PACKAGES or name.startswith(_SUBMODULES):
            return PathFinder.find_spec(name, path, target)
        return None


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once): ahead of pytest's rewriting hook,
    which pytest puts there before it loads plugins. Left in place: for these two packages
    it does what Python does without pytest."""
    if not any(isinstance(finder, _OwnModules) for finder in sys.meta_path):
        sys.meta_path.insert(0, _OwnModules())
