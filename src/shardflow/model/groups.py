"""Group nodes: several steps run concurrently as one node of the graph."""

from __future__ import annotations

from typing import ClassVar

from shardflow.model.steps import BaseHumanStep, BaseMachineStep, BaseStep


class _Group:
    """What both groups share: their branches (in declaration order) and an optional name,
    which identifies a nested group inside its parent."""

    __slots__ = ("branches", "name")
    default_name: ClassVar[str] = "group"

    def __init__(self, steps: tuple[BaseStep | ParallelGroup | RaceGroup, ...], name: str) -> None:
        self.branches = steps
        self.name = name

    @property
    def step_name(self) -> str:
        return self.name or self.default_name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.branches))})"


class ParallelGroup(_Group):
    """Run every branch concurrently on its own snapshot of the context, then merge their
    writes in declaration order; an optional chord ``callback`` runs once, after all settle.

    ``max_concurrent`` bounds how many branches of one execution run at once. With
    ``tolerate_failures=True`` (or ``min_success=k``) failed branches do not fail the group:
    their errors are stored under ``<group node id>.errors.<branch>`` for the callback.
    """

    __slots__ = ("callback", "max_concurrent", "min_success", "tolerate_failures")
    default_name = "parallel"

    def __init__(
        self,
        *steps: BaseStep | ParallelGroup | RaceGroup,
        callback: BaseMachineStep | None = None,
        max_concurrent: int | None = None,
        tolerate_failures: bool = False,
        min_success: int | None = None,
        name: str = "",
    ) -> None:
        super().__init__(steps, name)
        self.callback = callback
        self.max_concurrent = max_concurrent
        self.tolerate_failures = tolerate_failures or min_success is not None
        self.min_success = min_success


class RaceGroup(_Group):
    """Run every branch concurrently; the first to succeed wins and the rest are cancelled
    (and awaited, so their ``finally`` blocks run). Only the winner's writes are kept."""

    __slots__ = ()
    default_name = "race"

    def __init__(self, *steps: BaseStep | ParallelGroup | RaceGroup, name: str = "") -> None:
        super().__init__(steps, name)


Node = BaseMachineStep | BaseHumanStep | ParallelGroup | RaceGroup
"""Anything usable as a value of ``WorkflowDefinition.steps``."""
