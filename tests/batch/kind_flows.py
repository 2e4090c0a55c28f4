"""Workflows of litestar-workflows' node kinds for the batch tests (process pool, resume, Ray):
gateways, groups and a short timer that run to the end, a webhook and timers that park (one
with FIFO rendezvous, so tests see when a continued instance runs)."""

from __future__ import annotations

import asyncio
import os
import threading
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


async def _fifo(path: str, flags: int) -> None:
    """Open the FIFO ``path`` (blocks until the other end opens it) and close it: a
    rendezvous between two processes or instances. A daemon thread does the blocking open,
    so a process that is stopped meanwhile is not held up by it; gives up after a minute."""
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[None] = loop.create_future()

    def open_it() -> None:
        os.close(os.open(path, flags))
        loop.call_soon_threadsafe(opened.set_result, None)

    threading.Thread(target=open_it, daemon=True).start()
    await asyncio.wait_for(opened, 60)


class Gate(BaseMachineStep):
    """Waits at the FIFO ``wait_for`` names in the input, if it names one."""

    async def execute(self, context: WorkflowContext) -> None:
        if context.get("wait_for"):
            await _fifo(context.get("wait_for"), os.O_RDONLY)


class After(BaseMachineStep):
    """After the timer: meets whoever waits at the FIFO ``notify`` (if given); and while the
    file ``hold`` exists, says so at the FIFO ``started`` and never ends (killed there)."""

    async def execute(self, context: WorkflowContext) -> None:
        if context.get("notify"):
            await _fifo(context.get("notify"), os.O_WRONLY)
        hold = context.get("hold")
        if hold and os.path.exists(hold):  # noqa: ASYNC240 (one stat)
            await _fifo(context.get("started"), os.O_WRONLY)
            await asyncio.Event().wait()
        context.set("woke", True)


gated_timer = WorkflowDefinition(
    name="gated_timer",
    steps={"gate": Gate(name="gate"),
           "wait": ParkingTimer("wait", duration=lambda ctx: timedelta(seconds=ctx.get("delay"))),
           "after": After(name="after")},
    edges=[Edge("gate", "wait"), Edge("wait", "after")],
    initial_step="gate",
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
