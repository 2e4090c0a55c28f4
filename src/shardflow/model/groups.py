"""Group nodes: several steps run as one node of the graph (concurrently, in sequence, or
one chosen by a condition).

Each group is one node: its members run inside that node's step (``engine/branches.py``), so
a group needs no edges of its own and nests in other groups. litestar-workflows' form of
running a group outside a definition, ``await group.execute(context, engine)``, is here too:
it runs each member through ``engine.execute_step``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from shardflow.errors import RaceLostError
from shardflow.model.steps import BaseHumanStep, BaseMachineStep, BaseStep

if TYPE_CHECKING:
    from shardflow.context import WorkflowContext


class StepExecutor(Protocol):
    """What ``group.execute(context, engine)`` needs of an engine (litestar-workflows' API)."""

    async def execute_step(self, step: Any, context: WorkflowContext,
                           previous_result: Any = None) -> Any: ...


async def _execute_member(member: Any, context: WorkflowContext, engine: StepExecutor,
                          previous: Any = None) -> Any:
    if isinstance(member, ParallelGroup | RaceGroup | SequentialGroup | ConditionalGroup):
        return await member.execute(context, engine)
    return await engine.execute_step(member, context, previous_result=previous)


async def decide(condition: Callable[[WorkflowContext], Any], context: WorkflowContext) -> Any:
    """What ``condition`` (sync or async) answers for ``context``."""
    answer = condition(context)
    if inspect.isawaitable(answer):
        answer = await answer
    return answer


class _Group:
    """What both groups share: their branches (in declaration order) and an optional name,
    which identifies a nested group inside its parent."""

    __slots__ = ("branches", "name")
    default_name: ClassVar[str] = "group"

    def __init__(self, steps: tuple[Any, ...], name: str) -> None:
        self.branches = steps
        self.name = name

    @property
    def steps(self) -> tuple[Any, ...]:
        """The members, in declaration order (litestar-workflows' name for ``branches``)."""
        return self.branches

    @property
    def members(self) -> tuple[Any, ...]:
        """The nodes directly inside this group, in declaration order."""
        return self.branches

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
        *steps: Any,
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

    async def execute(self, context: WorkflowContext, engine: StepExecutor) -> Any:
        """Run the members concurrently through ``engine`` (outside a definition); the list
        of their results, or what the callback returns given that list."""
        results = await asyncio.gather(*(_execute_member(m, context, engine)
                                         for m in self.branches))
        if self.callback is not None:
            return await engine.execute_step(self.callback, context, previous_result=list(results))
        return list(results)


class RaceGroup(_Group):
    """Run every branch concurrently; the first to succeed wins and the rest are cancelled
    (and awaited, so their ``finally`` blocks run). Only the winner's writes are kept."""

    __slots__ = ()
    default_name = "race"

    def __init__(self, *steps: Any, name: str = "") -> None:
        super().__init__(steps, name)

    async def execute(self, context: WorkflowContext, engine: StepExecutor) -> Any:
        """Run the members concurrently through ``engine`` (outside a definition): the first
        success's result, once the others are cancelled and awaited; if every member fails,
        :class:`RaceLostError` with each member's error (the race rule of
        ``engine/branches.run_race``, which runs a race inside a definition)."""
        tasks = [asyncio.ensure_future(_execute_member(m, context, engine))
                 for m in self.branches]
        names = {task: member.step_name for task, member in zip(tasks, self.branches,
                                                                strict=True)}
        try:
            for finished in asyncio.as_completed(tasks):
                try:
                    return await finished
                except Exception:
                    continue  # a lost branch: the race goes on
            # every one failed: their errors, in declaration order
            raise RaceLostError(self.step_name, {names[task]: error for task in tasks
                                                 if (error := task.exception()) is not None})
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class SequentialGroup(_Group):
    """Run the members one after the other on one context, as one node: each sees what the
    ones before it wrote. A failing member fails the group (and the rest do not run)."""

    __slots__ = ()
    default_name = "sequence"

    def __init__(self, *steps: Any, name: str = "") -> None:
        super().__init__(steps, name)

    async def execute(self, context: WorkflowContext, engine: StepExecutor) -> Any:
        """Run the members in order through ``engine`` (outside a definition), each given
        the previous one's result; the last result."""
        result: Any = None
        for member in self.branches:
            result = await _execute_member(member, context, engine, result)
        return result


class ConditionalGroup:
    """Run the one member ``condition`` chooses, as one node: ``condition(context)`` (sync
    or async) returns a key of ``branches``; a key that is not there runs nothing and the
    context goes on unchanged (litestar-workflows' rule)."""

    __slots__ = ("branches", "condition", "name")
    default_name: ClassVar[str] = "conditional"

    def __init__(self, condition: Callable[[WorkflowContext], str | Awaitable[str]],
                 branches: Mapping[str, Any], name: str = "") -> None:
        self.condition = condition
        self.branches = dict(branches)
        self.name = name

    @property
    def step_name(self) -> str:
        return self.name or self.default_name

    @property
    def members(self) -> tuple[Any, ...]:
        """The nodes directly inside this group, in declaration order."""
        return tuple(self.branches.values())

    async def execute(self, context: WorkflowContext, engine: StepExecutor) -> Any:
        """Run the chosen member through ``engine`` (outside a definition): its result, or
        None when the condition names no branch."""
        member = self.branches.get(await decide(self.condition, context))
        if member is None:
            return None
        return await _execute_member(member, context, engine)

    def __repr__(self) -> str:
        return f"ConditionalGroup({', '.join(f'{k}={v!r}' for k, v in self.branches.items())})"


Group = ParallelGroup | RaceGroup | SequentialGroup | ConditionalGroup
"""Every kind of group: a node with members."""

Node = BaseMachineStep | BaseHumanStep | BaseStep | Group
"""Anything usable as a value of ``WorkflowDefinition.steps`` (gateways, timers and webhooks
are steps of their own kinds, ``model/gateways.py`` and ``model/waits.py``)."""
