"""The guide's basic fork/join: process, then email + Slack + SMS at once, then complete.

``complete`` runs once, after all three branches (a real join).
"""

from __future__ import annotations

from typing import Any

from shardflow import BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition
from shardflow.examples.services import FakeService

email_service = FakeService("email")
slack_service = FakeService("slack")
sms_service = FakeService("sms")


class ProcessStep(BaseMachineStep):
    name = "process"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("processed", True)


class SendEmail(BaseMachineStep):
    name = "send_email"

    async def execute(self, context: WorkflowContext) -> Any:
        await email_service.send(context.get("id"))
        context.set("email_sent", True)


class SendSlack(BaseMachineStep):
    name = "send_slack"

    async def execute(self, context: WorkflowContext) -> Any:
        await slack_service.send(context.get("id"))
        context.set("slack_sent", True)


class SendSMS(BaseMachineStep):
    name = "send_sms"

    async def execute(self, context: WorkflowContext) -> Any:
        await sms_service.send(context.get("id"))
        context.set("sms_sent", True)


class CompleteStep(BaseMachineStep):
    name = "complete"

    async def execute(self, context: WorkflowContext) -> Any:
        sent = [c for c in ("email", "slack", "sms") if context.get(f"{c}_sent")]
        context.set("channels", sent)


def build(name: str = "parallel_notify") -> WorkflowDefinition:
    return WorkflowDefinition(
        name=name,
        steps={
            "process": ProcessStep(),
            "send_email": SendEmail(),
            "send_slack": SendSlack(),
            "send_sms": SendSMS(),
            "complete": CompleteStep(),
        },
        edges=[
            Edge("process", "send_email"),
            Edge("process", "send_slack"),
            Edge("process", "send_sms"),
            Edge("send_email", "complete"),
            Edge("send_slack", "complete"),
            Edge("send_sms", "complete"),
        ],
        initial_step="process",
        terminal_steps={"complete"},
    )


workflow = build()
