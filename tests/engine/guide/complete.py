"""Parallel notification workflow example."""

import asyncio
from datetime import datetime  # the guide uses datetime without importing it

from shardflow import (
    BaseMachineStep,
    Edge,
    LocalExecutionEngine,
    ParallelGroup,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowRegistry,
)


class ProcessOrder(BaseMachineStep):
    name = "process_order"

    async def execute(self, context: WorkflowContext) -> None:
        order_id = context.get("order_id")  # noqa: F841 (as in the guide)
        context.set("processed", True)
        context.set("order_status", "completed")


class SendEmailNotification(BaseMachineStep):
    name = "send_email"

    async def execute(self, context: WorkflowContext) -> None:
        await asyncio.sleep(0.1)  # Simulate API call
        context.set("email_sent", True)
        context.set("email_timestamp", datetime.now().isoformat())


class SendSlackNotification(BaseMachineStep):
    name = "send_slack"

    async def execute(self, context: WorkflowContext) -> None:
        await asyncio.sleep(0.1)  # Simulate API call
        context.set("slack_sent", True)
        context.set("slack_timestamp", datetime.now().isoformat())


class SendWebhook(BaseMachineStep):
    name = "send_webhook"

    async def execute(self, context: WorkflowContext) -> None:
        await asyncio.sleep(0.1)  # Simulate API call
        context.set("webhook_sent", True)
        context.set("webhook_timestamp", datetime.now().isoformat())


class LogNotifications(BaseMachineStep):
    name = "log_notifications"

    async def execute(self, context: WorkflowContext) -> None:
        sent = []
        if context.get("email_sent"):
            sent.append("email")
        if context.get("slack_sent"):
            sent.append("slack")
        if context.get("webhook_sent"):
            sent.append("webhook")

        context.set("notifications_sent", sent)
        context.set("notification_count", len(sent))


# Create parallel notification group
notification_group = ParallelGroup(
    SendEmailNotification(),
    SendSlackNotification(),
    SendWebhook(),
    callback=LogNotifications(),
)


# Define workflow
workflow = WorkflowDefinition(
    name="order_with_notifications",
    version="1.0.0",
    description="Process order and send parallel notifications",
    steps={
        "process_order": ProcessOrder(),
        "notify": notification_group,
    },
    edges=[
        Edge("process_order", "notify"),
    ],
    initial_step="process_order",
    terminal_steps={"notify"},
)


# Run
async def main():
    registry = WorkflowRegistry()
    registry.register_definition(workflow)
    engine = LocalExecutionEngine(registry)

    instance = await engine.start_workflow(
        "order_with_notifications",
        initial_data={"order_id": "ORD-123"}
    )

    print(f"Notifications sent: {instance.context.get('notifications_sent')}")
    print(f"Count: {instance.context.get('notification_count')}")
