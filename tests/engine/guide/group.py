"""Guide, "Using ParallelGroup": the same fork/join as one group node."""

from engine.guide.basic import SendEmail, SendSlack, SendSMS
from engine.guide.fakes import CompleteStep, ProcessStep
from shardflow import Edge, ParallelGroup, WorkflowDefinition

# Define the parallel group
notification_group = ParallelGroup(
    SendEmail(),
    SendSlack(),
    SendSMS(),
)

# Use in workflow definition
workflow = WorkflowDefinition(
    name="parallel_notify",
    steps={
        "process": ProcessStep(),
        "notify": notification_group,
        "complete": CompleteStep(),
    },
    edges=[
        Edge("process", "notify"),
        Edge("notify", "complete"),
    ],
    initial_step="process",
    terminal_steps={"complete"},
)
