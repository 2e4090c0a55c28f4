"""An order approval whose human step chooses what the approver sees: a description, and
context fields by path (``display``), one of them missing from every order."""

from __future__ import annotations

from typing import Any

from shardflow import BaseHumanStep, BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition


class Receive(BaseMachineStep):
    name = "receive"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("received", True)


class ApproveOrder(BaseHumanStep):
    name = "approve"
    title = "Approve order"
    description = "Orders above the automatic limit need a person's approval."
    display = {"Customer": "order.customer", "Amount": "order.total", "Lines": "order.lines",
               "Discount": "order.discount"}
    form_schema = {
        "type": "object", "title": "Your decision",
        "description": "Approve only orders you have checked against the contract.",
        "properties": {"approved": {"type": "boolean", "title": "Approve?"},
                       "comment": {"type": "string", "title": "Comment"}},
        "required": ["approved"],
    }


workflow = WorkflowDefinition(
    name="order_approval", steps={"receive": Receive(), "approve": ApproveOrder()},
    edges=[Edge("receive", "approve")], initial_step="receive", terminal_steps={"approve"})
