"""A workflow whose instances each take a different path, so a test sees every lifecycle
event come back from batch workers: ``{"value": -1}`` fails at ``validate``, ``{"skip":
true}`` has ``charge`` refuse to run (its ``can_execute``) and completes, anything else
waits at the human step ``approve``."""

from __future__ import annotations

from typing import Any

from shardflow import BaseHumanStep, BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition


class Validate(BaseMachineStep):
    name = "validate"

    async def execute(self, context: WorkflowContext) -> Any:
        if context.get("value", 0) < 0:
            raise ValueError("value must not be negative")
        context.set("valid", True)
        return None


class Charge(BaseMachineStep):
    name = "charge"

    async def can_execute(self, context: WorkflowContext) -> bool:
        return not context.get("skip", False)

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("charged", True)
        return None


class Approve(BaseHumanStep):
    name = "approve"
    title = "Approve the charge"


workflow = WorkflowDefinition(
    name="evented", version="1.0",
    steps={"validate": Validate(), "charge": Charge(), "approve": Approve()},
    edges=[Edge("validate", "charge"), Edge("charge", "approve")],
    initial_step="validate", terminal_steps={"approve"},
)
