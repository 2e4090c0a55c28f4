"""Gateways: nodes that do no work and only decide where the path goes (litestar-workflows'
``ExclusiveGateway`` and ``ParallelGateway``).

A gateway is compiled to the graph's own rules (docs/SEMANTICS.md), not run as a step:

* an ``ExclusiveGateway`` takes the one outgoing edge whose target its ``condition`` names;
  every other edge is *not taken*, so its target is skipped and the skip propagates, as for a
  false edge condition;
* a ``ParallelGateway`` takes every outgoing edge (its ``branches`` must be exactly its edges'
  targets): a fork, and the node where those paths meet is a join like any other.

``await gateway.execute(context)`` still answers as in litestar-workflows (the chosen name,
the branch list), for code that calls it directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from shardflow._types import StepType
from shardflow.model.groups import decide
from shardflow.model.steps import BaseStep

if TYPE_CHECKING:
    from shardflow.context import WorkflowContext


class ExclusiveGateway(BaseStep):
    """XOR: ``condition(context)`` (sync or async) returns the node id of the one successor
    to run. A name that is not one of the gateway's edge targets fails the gateway's node."""

    step_type = StepType.GATEWAY

    def __init__(self, name: str,
                 condition: Callable[[WorkflowContext], str | Awaitable[str]],
                 description: str = "") -> None:
        super().__init__(name, description)
        self.condition = condition

    async def execute(self, context: WorkflowContext) -> Any:
        """The name ``condition`` chooses for ``context``."""
        return await decide(self.condition, context)


class ParallelGateway(BaseStep):
    """AND: every successor in ``branches`` runs, each on its own fork of the context."""

    step_type = StepType.GATEWAY

    def __init__(self, name: str, branches: list[str], description: str = "") -> None:
        super().__init__(name, description)
        self.branches = list(branches)

    async def execute(self, context: WorkflowContext) -> list[str]:
        """The branches, as litestar-workflows answers."""
        return self.branches


Gateway = ExclusiveGateway | ParallelGateway
