"""Workflows of litestar-workflows' node kinds for the batch tests (process pool, resume, Ray):
gateways, groups and a short timer that run to the end, a webhook and a timer that park."""

from __future__ import annotations

from datetime import timedelta

from shardflow import (
    BaseMachineStep,
    ConditionalGroup,
    Edge,
    ExclusiveGateway,
    ParallelGateway,
    SequentialGroup,
    TimerStep,
    WebhookStep,
    WorkflowContext,
    WorkflowDefinition,
)


class Put(BaseMachineStep):
    """Writes ``key = value`` and, on a single path (``trail``), appends its name to ``trail``."""

    def __init__(self, name: str, key: str, value: object, trail: bool = True) -> None:
        super().__init__(name)
        self.key, self.value, self.trail = key, value, trail

    async def execute(self, context: WorkflowContext) -> None:
        context.set(self.key, self.value)
        if self.trail:
            context.set("trail", [*context.get("trail", []), self.name])


routed = WorkflowDefinition(
    name="routed",
    steps={
        "route": ExclusiveGateway("route", condition=lambda ctx: "big" if ctx.get("amount") >= 50 else "small"),
        "big": SequentialGroup(Put("review", "reviewed", True), Put("charge", "charged", "big"), name="big"),
        "small": ConditionalGroup(lambda ctx: "even" if ctx.get("amount") % 2 == 0 else "odd",
                                  {"even": Put("even", "charged", "even"),
                                   "odd": Put("odd", "charged", "odd")}, name="small"),
        "fan": ParallelGateway("fan", branches=["email", "sms"]),
        "email": Put("email", "emailed", True, trail=False),
        "sms": Put("sms", "texted", True, trail=False),
        "done": Put("done", "done", True),
        "cool_down": TimerStep("cool_down", duration=timedelta(milliseconds=1)),
    },
    edges=[Edge("route", "big"), Edge("route", "small"), Edge("big", "fan"),
           Edge("small", "fan"), Edge("fan", "email"), Edge("fan", "sms"),
           Edge("email", "done"), Edge("sms", "done"), Edge("done", "cool_down")],
    initial_step="route",
    terminal_steps={"cool_down"},
)


webhooked = WorkflowDefinition(
    name="webhooked",
    steps={"wait_payment": WebhookStep("wait_payment", callback_key="payment"),
           "ship": Put("ship", "shipped", True)},
    edges=[Edge("wait_payment", "ship")],
    initial_step="wait_payment",
)


class ParkingTimer(TimerStep):
    """Parks even a zero wait, so a test decides by its input which timers are due on resume."""

    park_after_seconds = -1.0


timed = WorkflowDefinition(
    name="timed",
    steps={"wait": ParkingTimer("wait", duration=lambda ctx: timedelta(seconds=ctx.get("delay"))),
           "after": Put("after", "woke", True)},
    edges=[Edge("wait", "after")],
    initial_step="wait",
)


decided = WorkflowDefinition(
    name="decided",
    steps={"review": Put("review", "reviewed", True), "publish": Put("publish", "outcome", "published"),
           "reject": Put("reject", "outcome", "rejected"), "close": Put("close", "closed", True)},
    edges=[Edge("review", "publish", "approved and order.total < 1000"),
           Edge("review", "reject", "not (approved and order.total < 1000)"),
           Edge("publish", "close"), Edge("reject", "close")],
    initial_step="review",
    terminal_steps={"close"},
)
"""String edge conditions: each instance routed by its expression, in the workers."""
