"""Guide, "Basic Parallel Pattern": a fork and a join by edges."""

from engine.guide.fakes import CompleteStep, ProcessStep, email_service, slack_service, sms_service
from shardflow import BaseMachineStep, Edge, WorkflowDefinition


# Steps that will run in parallel
class SendEmail(BaseMachineStep):
    name = "send_email"

    async def execute(self, context):
        await email_service.send(...)
        context.set("email_sent", True)


class SendSlack(BaseMachineStep):
    name = "send_slack"

    async def execute(self, context):
        await slack_service.send(...)
        context.set("slack_sent", True)


class SendSMS(BaseMachineStep):
    name = "send_sms"

    async def execute(self, context):
        await sms_service.send(...)
        context.set("sms_sent", True)


# Define parallel edges
notification_workflow = WorkflowDefinition(
    name="parallel_notify",
    steps={
        "process": ProcessStep(),
        "send_email": SendEmail(),
        "send_slack": SendSlack(),
        "send_sms": SendSMS(),
        "complete": CompleteStep(),
    },
    edges=[
        # Fork: one step to many
        Edge("process", "send_email"),
        Edge("process", "send_slack"),
        Edge("process", "send_sms"),
        # Join: many steps to one
        Edge("send_email", "complete"),
        Edge("send_slack", "complete"),
        Edge("send_sms", "complete"),
    ],
    initial_step="process",
    terminal_steps={"complete"},
)
