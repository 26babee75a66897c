"""``RunContext``: the dependency bundle a run hands to the tasks that ask for it."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

__all__ = ["RunContext"]

Deps = TypeVar("Deps", covariant=True)


class RunContext(Generic[Deps]):
    """Wraps a dependency bundle (``deps``) for the tasks of a run.

    A task receives it by annotating a parameter as ``RunContext`` or ``RunContext[Deps]``.
    Attribute access reads through to the bundle, so ``context.base_url`` is
    ``context.deps.base_url``; the bundle itself is ``context.deps``.
    """

    __slots__ = ("deps",)

    deps: Deps

    def __init__(self, deps: Deps) -> None:
        object.__setattr__(self, "deps", deps)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails, so ``deps`` itself never reaches here.
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        try:
            return getattr(self.deps, name)
        except AttributeError:
            raise AttributeError(
                f"RunContext has no attribute {name!r}: neither has its bundle "
                f"{type(self.deps).__name__}"
            ) from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("RunContext is read-only; change the bundle instead")

    def __repr__(self) -> str:
        return f"RunContext({self.deps!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunContext) and other.deps == self.deps

    def __hash__(self) -> int:
        return hash((RunContext, self.deps))

    def __reduce__(self) -> tuple[Any, ...]:
        return (RunContext, (self.deps,))
