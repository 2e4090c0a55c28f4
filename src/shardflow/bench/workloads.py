"""Benchmark workloads for ``shardflow bench``: ``forkjoin`` (the guide's notify fork/join with
no-op steps, exactly what the hand-written baseline does), ``forkjoin_io`` (the same with a
10 ms await in each branch), ``linear10`` (ten no-op steps) and ``limited_io`` (one 20 ms call
under a limit of 50). They live here, not in ``examples``, so that editing an example never
moves a benchmark figure."""

from __future__ import annotations

import asyncio
from typing import Any

from shardflow.context import WorkflowContext
from shardflow.model.definition import Edge, WorkflowDefinition
from shardflow.model.steps import BaseMachineStep

IO_SECONDS = 0.01


class _Flag(BaseMachineStep):
    """Sets ``flag`` to true; with ``io``, after a 10 ms await (an API call)."""

    flag = ""
    io = False

    async def execute(self, context: WorkflowContext) -> Any:
        if self.io:
            await asyncio.sleep(IO_SECONDS)
        context.set(self.flag, True)


def _flag(node: str, flag: str, io: bool = False) -> BaseMachineStep:
    step: BaseMachineStep = type(f"Flag_{node}", (_Flag,), {"name": node, "flag": flag, "io": io})()
    return step


class _Channels(BaseMachineStep):
    """The join: which channels were notified (what the baseline's last step computes)."""

    name = "complete"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("channels", [c for c in ("email", "slack", "sms") if context.get(f"{c}_sent")])


def _forkjoin(name: str, io: bool) -> WorkflowDefinition:
    channels = ("email", "slack", "sms")
    steps: dict[str, Any] = {"process": _flag("process", "processed")}
    steps.update({f"send_{c}": _flag(f"send_{c}", f"{c}_sent", io) for c in channels})
    steps["complete"] = _Channels()
    return WorkflowDefinition(
        name=name,
        steps=steps,
        edges=[Edge("process", f"send_{c}") for c in channels]
        + [Edge(f"send_{c}", "complete") for c in channels],
        initial_step="process",
        terminal_steps={"complete"},
    )


forkjoin = _forkjoin("forkjoin", io=False)
forkjoin_io = _forkjoin("forkjoin_io", io=True)

linear10 = WorkflowDefinition(
    name="linear10",
    steps={f"s{i}": _flag(f"s{i}", f"s{i}") for i in range(10)},
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

WORKLOADS = {"forkjoin": forkjoin, "forkjoin-io": forkjoin_io, "linear10": linear10,
             "limit50": limited_io}
"""``shardflow bench --workload NAME`` -> its definition."""
