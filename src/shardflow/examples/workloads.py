"""Benchmark workloads for ``shardflow bench``: ``forkjoin`` (the notify fork/join with no-op
steps), ``forkjoin_io`` (the same with a 10 ms await in each branch), ``linear10`` (ten no-op
steps) and ``limited_io`` (one 20 ms call under a limit of 50)."""

from __future__ import annotations

import asyncio
from typing import Any

from shardflow import BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition
from shardflow.examples.notify import workflow as forkjoin

IO_SECONDS = 0.01


class _Noop(BaseMachineStep):
    async def execute(self, context: WorkflowContext) -> Any:
        context.set(self.name, True)


def _noop(step_name: str) -> BaseMachineStep:
    step: BaseMachineStep = type(f"Step_{step_name}", (_Noop,), {"name": step_name})()
    return step


class _Io(BaseMachineStep):
    async def execute(self, context: WorkflowContext) -> Any:
        await asyncio.sleep(IO_SECONDS)
        context.set(self.name, True)


def _io(step_name: str) -> BaseMachineStep:
    step: BaseMachineStep = type(f"Io_{step_name}", (_Io,), {"name": step_name})()
    return step


forkjoin_io = WorkflowDefinition(
    name="forkjoin_io",
    steps={
        "process": _noop("process"),
        "send_email": _io("send_email"),
        "send_slack": _io("send_slack"),
        "send_sms": _io("send_sms"),
        "complete": _noop("complete"),
    },
    edges=[
        Edge("process", "send_email"), Edge("process", "send_slack"), Edge("process", "send_sms"),
        Edge("send_email", "complete"), Edge("send_slack", "complete"), Edge("send_sms", "complete"),
    ],
    initial_step="process",
    terminal_steps={"complete"},
)

linear10 = WorkflowDefinition(
    name="linear10",
    steps={f"s{i}": _noop(f"s{i}") for i in range(10)},
    edges=[Edge(f"s{i}", f"s{i + 1}") for i in range(9)],
    initial_step="s0",
    terminal_steps={"s9"},
)




class _LimitedIo(BaseMachineStep):
    """An API call allowed 50 at a time across the whole run (``[limits] api = 50``)."""

    name = "call_api"
    limit = "api"

    async def execute(self, context: WorkflowContext) -> Any:
        await asyncio.sleep(0.02)


limited_io = WorkflowDefinition(
    name="limited_io",
    steps={"call_api": _LimitedIo()},
    edges=[],
    initial_step="call_api",
    terminal_steps={"call_api"},
)

__all__ = ["forkjoin", "forkjoin_io", "limited_io", "linear10"]
