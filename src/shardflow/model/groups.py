"""Group nodes: several steps run concurrently as one node of the graph."""

from __future__ import annotations

from shardflow.model.steps import BaseHumanStep, BaseMachineStep, BaseStep


class ParallelGroup:
    """Run every branch concurrently on its own snapshot of the context, then merge their
    writes in declaration order; an optional chord ``callback`` runs once, after all settle.

    ``max_concurrent`` bounds how many branches of one execution run at once. With
    ``tolerate_failures=True`` (or ``min_success=k``) failed branches do not fail the group:
    their errors are stored under ``<group node id>.errors.<branch>`` for the callback.
    """

    __slots__ = ("branches", "callback", "max_concurrent", "min_success", "name",
                 "tolerate_failures")

    def __init__(
        self,
        *steps: BaseStep | ParallelGroup | RaceGroup,
        callback: BaseMachineStep | None = None,
        max_concurrent: int | None = None,
        tolerate_failures: bool = False,
        min_success: int | None = None,
        name: str = "",
    ) -> None:
        self.branches = steps
        self.callback = callback
        self.max_concurrent = max_concurrent
        self.tolerate_failures = tolerate_failures or min_success is not None
        self.min_success = min_success
        self.name = name

    @property
    def step_name(self) -> str:
        return self.name or "parallel"

    @property
    def steps(self) -> tuple[BaseStep | ParallelGroup | RaceGroup, ...]:
        return self.branches

    def __repr__(self) -> str:
        return f"ParallelGroup({', '.join(map(repr, self.branches))})"


class RaceGroup:
    """Run every branch concurrently; the first to succeed wins and the rest are cancelled
    (and awaited, so their ``finally`` blocks run). Only the winner's writes are kept."""

    __slots__ = ("branches", "name")

    def __init__(self, *steps: BaseStep | ParallelGroup | RaceGroup, name: str = "") -> None:
        self.branches = steps
        self.name = name

    @property
    def step_name(self) -> str:
        return self.name or "race"

    @property
    def steps(self) -> tuple[BaseStep | ParallelGroup | RaceGroup, ...]:
        return self.branches

    def __repr__(self) -> str:
        return f"RaceGroup({', '.join(map(repr, self.branches))})"


Node = BaseMachineStep | BaseHumanStep | ParallelGroup | RaceGroup
"""Anything usable as a value of ``WorkflowDefinition.steps``."""
